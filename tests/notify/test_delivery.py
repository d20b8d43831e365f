"""The delivery service in-process against real Redis, a real database and a real HTTP receiver:
signed webhooks delivered once, a down destination retried then dead-lettered while another keeps
receiving, a 2,000-alert storm reaching a rate-limited destination as digests within its limit,
and two services on one group never sending an alert twice."""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa

from streaming import keys
from streaming.notify import store
from streaming.notify.destinations import RateLimit
from streaming.notify.outbox import RetryPolicy
from streaming.notify.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    decode_body,
    verify_signature,
)
from tests.notify.conftest import SECRET, FastClock, make_alert, publish, running, wait_until

ENV = {"HOOK_SECRET": SECRET}


def add_webhook(engine: sa.Engine, name: str, url: str, rate: RateLimit | None = None, **filters) -> int:
    with engine.begin() as conn:
        dest = store.add_destination(conn, name, url, ENV, "HOOK_SECRET", rate)
        store.add_subscription(conn, dest, **filters)
    return dest.id


def delivered_ids(received) -> list[str]:
    return [a.id for r in received for a in decode_body(r.body).alerts]


def pending(redis_client) -> int:
    return redis_client.xpending(keys.ALERTS_STREAM, keys.NOTIFY_GROUP)["pending"]


async def test_signed_webhook_gets_each_subscribed_alert_once(redis_url, redis_client, engine, receiver):
    add_webhook(engine, "all", receiver.url("/all"))
    add_webhook(engine, "eth-4h", receiver.url("/eth"), symbols=["ETH-USD"], timeframes=["4h"])
    old = publish(redis_client, [make_alert(100)])  # before the group exists: never delivered
    alerts = [make_alert(i, symbol=("ETH-USD" if i % 2 else "BTC-USD"), timeframe="4h") for i in range(20)]

    async def go():
        async with running(redis_url, engine, ENV):
            publish(redis_client, alerts)
            await wait_until(lambda: len(receiver.accepted("/all")) == 20 and len(receiver.accepted("/eth")) == 10,
                             message="20 + 10 deliveries")
            await wait_until(lambda: pending(redis_client) == 0, message="every entry acknowledged")

    await go()
    got = receiver.accepted("/all")
    assert sorted(delivered_ids(got)) == sorted(a.id for a in alerts)
    assert sorted(delivered_ids(receiver.accepted("/eth"))) == sorted(a.id for a in alerts if a.symbol == "ETH-USD")
    for r in got:
        assert verify_signature(SECRET.encode(), r.headers[TIMESTAMP_HEADER], r.body, r.headers[SIGNATURE_HEADER],
                                now=int(r.headers[TIMESTAMP_HEADER]))
        assert not verify_signature(b"wrong", r.headers[TIMESTAMP_HEADER], r.body, r.headers[SIGNATURE_HEADER],
                                    now=int(r.headers[TIMESTAMP_HEADER]))
        b = decode_body(r.body)
        assert b.kind == "alert" and b.count == 1 and r.headers[DELIVERY_HEADER] == b.alerts[0].id
    assert old and make_alert(100).id not in delivered_ids(receiver.all())
    status = redis_client.hgetall(keys.notify_status(1))
    assert status["sent"] == "20" and status["messages"] == "20" and "last_error" not in status
    assert redis_client.get(keys.notify_delivery(1, alerts[0].id)) == "sent"
    assert 0 < redis_client.ttl(keys.notify_delivery(1, alerts[0].id)) <= 7 * 86_400

    async def again():  # a restart re-reads nothing and sends nothing
        async with running(redis_url, engine, ENV, consumer="test-2"):
            publish(redis_client, [make_alert(50)])
            await wait_until(lambda: len(receiver.accepted("/all")) == 21, message="the new alert")

    await again()
    assert Counter(delivered_ids(receiver.accepted("/all"))).most_common(1)[0][1] == 1


async def test_down_destination_is_retried_then_dead_lettered_while_others_receive(redis_url, redis_client, engine,
                                                                           receiver):
    down = add_webhook(engine, "down", receiver.url("/down"))
    add_webhook(engine, "up", receiver.url("/up"))
    receiver.status["/down"] = 503
    alerts = [make_alert(i) for i in range(6)]
    retry = RetryPolicy(max_attempts=3, base_s=0.05, cap_s=0.2)

    async def go():
        async with running(redis_url, engine, ENV, retry=retry):
            publish(redis_client, alerts)
            await wait_until(lambda: len(receiver.accepted("/up")) == 6, message="the healthy destination")
            await wait_until(lambda: redis_client.xlen(keys.NOTIFY_DEAD_STREAM) == 6, message="6 dead letters")
            await wait_until(lambda: pending(redis_client) == 0, message="every entry acknowledged")

    await go()
    attempts = receiver.all("/down")
    assert 3 <= len(attempts) <= 6 * 3 and all(r.status == 503 for r in attempts)
    dead = [json.loads(f["json"]) for _, f in redis_client.xrange(keys.NOTIFY_DEAD_STREAM)]
    assert sorted(d["alert_id"] for d in dead) == sorted(a.id for a in alerts)
    assert {d["destination"] for d in dead} == {"down"} and {d["attempts"] for d in dead} == {3}
    assert {d["reason"] for d in dead} == {"HTTP 503 Service Unavailable"}
    assert dead[0]["alert"]["symbol"] == "BTC-USD"
    status = redis_client.hgetall(keys.notify_status(down))
    assert status["dead"] == "6" and int(status["failed"]) == len(attempts) and "sent" not in status
    assert status["last_error"] == "HTTP 503 Service Unavailable"
    assert redis_client.get(keys.notify_delivery(down, alerts[0].id)) == "dead"


async def test_a_storm_of_2000_alerts_reaches_a_rate_limited_destination_as_digests_within_its_limit(
        redis_url, redis_client, engine, receiver):
    add_webhook(engine, "limited", receiver.url("/limited"), rate=RateLimit(5, 2.0))
    symbols = [f"S{i}-USD" for i in range(100)]
    alerts = [make_alert(i // 100, symbol=symbols[i % 100], timeframe=("1h", "4h")[i % 2]) for i in range(2000)]
    clock = FastClock(1_786_309_548.0)

    async def go():
        async with running(redis_url, engine, ENV, clock=clock):
            publish(redis_client, alerts)
            await wait_until(lambda: len(delivered_ids(receiver.accepted())) >= 2000, timeout=60,
                             message="2000 alerts delivered")
            await wait_until(lambda: pending(redis_client) == 0, message="every entry acknowledged")

    await go()
    got = receiver.accepted("/limited")
    ids = delivered_ids(got)
    assert len(ids) == len(set(ids)) == 2000
    assert len(got) <= 40 and sum(decode_body(r.body).kind == "digest" for r in got) >= 1
    # the limit, on the clock the limiter ran on (stamped on every send): never 6 in 2 s
    stamps = sorted(int(r.headers[TIMESTAMP_HEADER]) for r in got)
    assert all(stamps[i + 5] - stamps[i] >= 2 for i in range(len(stamps) - 5))
    status = redis_client.hgetall(keys.notify_status(1))
    assert status["sent"] == "2000" and int(status["messages"]) == len(got) and int(status["digests"]) >= 1


async def test_two_services_on_one_group_never_send_an_alert_twice(redis_url, redis_client, engine, receiver):
    """Service a has every alert, 8 of them in flight (the receiver holds them); service b takes all
    of them over (it claims entries idle 0.2 s, a touches its own only every 20 s). The leases alone
    keep every alert single: b must find a's 8 leased, and everything is delivered once."""
    add_webhook(engine, "shared", receiver.url("/shared"))
    alerts = [make_alert(i, symbol=f"S{i % 17}-USD") for i in range(50)]
    receiver.hold("/shared")

    async def go():
        async with running(redis_url, engine, ENV, consumer="a", claim_idle_s=60, lease_s=3) as a:
            publish(redis_client, alerts)
            await wait_until(lambda: receiver.held("/shared") == 8, message="a's sends in flight")
            async with running(redis_url, engine, ENV, consumer="b", claim_idle_s=0.2, lease_s=3) as b:
                await wait_until(lambda: b.stats["leased_elsewhere"] >= 8, message="b meeting a's leases")
                receiver.release("/shared", 200)
                await wait_until(lambda: len(receiver.accepted("/shared")) >= 50, message="50 alerts")
                await wait_until(lambda: pending(redis_client) == 0 and not a.pairs and not b.pairs,
                                 message="every entry acknowledged, nothing left to do")
                return a.stats, b.stats

    a_stats, b_stats = await go()
    counts = Counter(delivered_ids(receiver.all("/shared")))
    assert len(counts) == 50 and max(counts.values()) == 1
    assert b_stats["claimed"] >= 50 and a_stats["claimed"] == 0


async def test_the_service_recreates_its_group_when_the_stream_is_deleted(redis_url, redis_client, engine, receiver):
    add_webhook(engine, "hook", receiver.url("/hook"))

    async def go():
        async with running(redis_url, engine, ENV):
            publish(redis_client, [make_alert(0)])
            await wait_until(lambda: len(receiver.accepted()) == 1, message="the first alert")
            redis_client.delete(keys.ALERTS_STREAM)  # group gone with it: NOGROUP on the next read
            await wait_until(lambda: redis_client.exists(keys.ALERTS_STREAM), message="the group recreated")
            publish(redis_client, [make_alert(1)])
            await wait_until(lambda: len(receiver.accepted()) == 2, message="an alert after the deletion")

    await go()
    assert sorted(delivered_ids(receiver.accepted())) == sorted([make_alert(0).id, make_alert(1).id])


async def test_a_destination_whose_variable_is_unset_says_so_and_dead_letters(
        redis_url, redis_client, engine, receiver):
    """Added where HOOK_SECRET was set, run where it is not: status names the variable at start."""
    dest = add_webhook(engine, "hook", receiver.url("/hook"))

    async def go():
        async with running(redis_url, engine, {}, retry=RetryPolicy(max_attempts=1)):
            await wait_until(lambda: redis_client.hget(keys.notify_status(dest), "last_error"), message="the error")
            publish(redis_client, [make_alert(0)])
            await wait_until(lambda: redis_client.xlen(keys.NOTIFY_DEAD_STREAM) == 1, message="a dead letter")

    await go()
    reason = "environment variable HOOK_SECRET is not set in the environment of `livermore notify`"
    assert redis_client.hget(keys.notify_status(dest), "last_error") == reason
    assert json.loads(redis_client.xrange(keys.NOTIFY_DEAD_STREAM)[0][1]["json"])["reason"] == reason
    assert receiver.all() == []
