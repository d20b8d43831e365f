"""Destinations and subscriptions in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from streaming.db.engine import make_engine
from streaming.db.migrate import upgrade
from streaming.db.schema import exchange_symbols, notify_destinations, notify_subscriptions
from streaming.notify import store
from streaming.notify.destinations import InvalidDestination, RateLimit
from streaming.notify.subscriptions import InvalidSubscription, Subscription

ENV = {"HOOK_SECRET": "s", "TG_BOT": "123456789:AAEabc", "TG_CHAT": "-100123"}


@pytest.fixture
def any_engine(database_url):
    upgrade(database_url)
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


def test_add_list_and_remove(any_engine):
    with any_engine.begin() as conn:
        tg = store.add_destination(conn, "phone", "tgram://{TG_BOT}/{TG_CHAT}", ENV, charts=False)
        hook = store.add_destination(conn, "hook", "https://127.0.0.1/h", ENV, "HOOK_SECRET", RateLimit(10, 1.0))
        s1 = store.add_subscription(conn, tg, "binance", timeframes=["1h", "4h"], min_level=200)
        s2 = store.add_subscription(conn, hook, symbols=["BTC-USD"], tiers=[2], types=["reversal"])
    with any_engine.connect() as conn:
        dests = store.list_destinations(conn)
        subs = store.list_subscriptions(conn)
    assert [(d.name, d.kind, d.charts, d.rate) for d in dests] == [("phone", "apprise", False, None),
                                                                   ("hook", "webhook", True, RateLimit(10, 1.0))]
    assert subs == [Subscription(s1.id, tg.id, 2, None, None, ("1h", "4h"), None, 200.0),
                    Subscription(s2.id, hook.id, None, ("BTC-USD",), (2,), None, ("reversal",), None)]
    assert subs == [s1, s2]
    with any_engine.begin() as conn:
        store.remove_subscription(conn, "phone", s1.id)
        with pytest.raises(InvalidSubscription, match="has no subscription"):
            store.remove_subscription(conn, "phone", s2.id)  # not phone's
        store.remove_destination(conn, "hook")
        with pytest.raises(InvalidDestination, match="no destination named 'hook' \\(destinations: phone\\)"):
            store.get_destination(conn, "hook")
    with any_engine.connect() as conn:
        assert [d.name for d in store.list_destinations(conn)] == ["phone"]
        assert store.list_subscriptions(conn) == []


def test_a_refusal_writes_nothing(any_engine):
    with pytest.raises(InvalidSubscription, match="unknown exchange 'kraken'"), any_engine.begin() as conn:
        d = store.add_destination(conn, "phone", "tgram://{TG_BOT}/{TG_CHAT}", ENV)
        store.add_subscription(conn, d, "kraken")
    with any_engine.begin() as conn:
        with pytest.raises(InvalidDestination, match="not a URL Apprise accepts"):
            store.add_destination(conn, "x", "tgram://", ENV)
        assert conn.execute(sa.select(sa.func.count()).select_from(notify_destinations)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(notify_subscriptions)).scalar_one() == 0


def test_the_database_enforces_kind_rate_and_references(any_engine):
    for bad in (notify_destinations.insert().values(name="a", kind="sms", url="x"),
                notify_destinations.insert().values(name="b", kind="webhook", url="x", rate_count=5),
                notify_subscriptions.insert().values(destination_id=999)):
        with pytest.raises(sa.exc.IntegrityError), any_engine.begin() as conn:
            conn.execute(bad)


def test_symbol_tiers(any_engine):
    now = datetime.now(UTC)
    with any_engine.begin() as conn:
        conn.execute(exchange_symbols.insert(), [
            {"exchange_id": 1, "symbol": "BTC-USD", "base": "BTC", "quote": "USD", "tier": 1, "refreshed_at": now},
            {"exchange_id": 1, "symbol": "FOO-USD", "base": "FOO", "quote": "USD", "tier": 2, "refreshed_at": now}])
        assert store.symbol_tiers(conn) == {(1, "BTC-USD"): 1, (1, "FOO-USD"): 2}


def test_a_service_reached_through_a_variable_or_its_https_url_keeps_its_documented_limit(any_engine):
    env = {**ENV, "DISCORD_URL": "https://discord.com/api/webhooks/123456/abcdefTOKEN", "HOOK_ID": "123456",
           "HOOK_TOKEN": "abcdefTOKEN"}
    with any_engine.begin() as conn:
        whole = store.add_destination(conn, "whole", "{DISCORD_URL}", env)
        native = store.add_destination(conn, "native", "https://discord.com/api/webhooks/{HOOK_ID}/{HOOK_TOKEN}", env)
        scheme = store.add_destination(conn, "scheme", "discord://{HOOK_ID}/{HOOK_TOKEN}", env)
        chosen = store.add_destination(conn, "chosen", "{DISCORD_URL}", env, rate=RateLimit(1, 5.0))
        phone = store.add_destination(conn, "phone", "tgram://{TG_BOT}/{TG_CHAT}", env)
    assert whole.rate == native.rate == RateLimit(5, 2.0)
    assert scheme.rate is None and scheme.rate_limit() == RateLimit(5, 2.0)  # the stored scheme says it
    assert chosen.rate == RateLimit(1, 5.0) and phone.rate is None
    with any_engine.connect() as conn:  # a process without the variables applies the same limits
        limits = {d.name: d.rate_limit() for d in store.list_destinations(conn)}
    assert limits == {"whole": RateLimit(5, 2.0), "native": RateLimit(5, 2.0), "scheme": RateLimit(5, 2.0),
                      "chosen": RateLimit(1, 5.0), "phone": RateLimit(1, 1.0)}
