"""The pure core of alert delivery: secrets by name, destination checks, subscriptions, the sliding
window, the outbox (rate limit, digests, retries, dead letters) and message text."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.notify import envref
from streaming.notify.destinations import (
    Destination,
    InvalidDestination,
    RateLimit,
    classify,
    default_limit,
    parse_rate,
)
from streaming.notify.digest import alert_text, alert_title, digest_lines, digest_text, digest_title
from streaming.notify.outbox import Batch, Job, Outbox, RetryPolicy
from streaming.notify.ratelimit import SlidingWindow
from streaming.notify.subscriptions import InvalidSubscription, Subscription, check_filters, matches, route
from streaming.notify.webhook import body, decode_body, delivery_id, sign, verify_signature
from tests.notify.alerts import make_alert

# --- envref ----------------------------------------------------------------------------------


def test_render_and_missing_variables_are_named_never_valued():
    tpl = "discord://{HOOK_ID}/{HOOK_TOKEN}?x={HOOK_ID}"
    assert envref.variables(tpl) == ["HOOK_ID", "HOOK_TOKEN"]
    assert envref.render(tpl, {"HOOK_ID": "1", "HOOK_TOKEN": "tok"}) == "discord://1/tok?x=1"
    with pytest.raises(envref.MissingVariable, match="HOOK_TOKEN is not set"):
        envref.render(tpl, {"HOOK_ID": "1"})
    with pytest.raises(envref.MissingVariable, match="HOOK_ID, HOOK_TOKEN are not set"):
        envref.render(tpl, {"HOOK_ID": ""})
    assert envref.render("json://127.0.0.1:9/x", {}) == "json://127.0.0.1:9/x"


def test_redactor_blanks_values_and_their_url_quoted_form():
    r = envref.Redactor(["s3cr/t+", "s3c", ""])
    assert r("url=https://x/s3cr/t+/y and s3cr%2Ft%2B and s3c") == "url=https://x/***/y and *** and ***"
    assert r("nothing here") == "nothing here"


@pytest.mark.parametrize("name", ["1X", "A-B", "", "A B", "x" * 201])
def test_bad_env_names(name):
    with pytest.raises(ValueError):
        envref.check_env_name(name)


# --- destinations ----------------------------------------------------------------------------

ENV = {"HOOK_SECRET": "hs", "DISCORD_ID": "1234567890", "DISCORD_TOKEN": "abcdefTOKEN", "PW": "pw",
       "WHOLE_URL": "discord://1234567890/abcdefTOKEN"}


@pytest.mark.parametrize("url,secret_env,kind", [
    ("https://127.0.0.1:8080/hook", "HOOK_SECRET", "webhook"),
    ("http://127.0.0.1/hook?token={DISCORD_TOKEN}", "HOOK_SECRET", "webhook"),
    ("json://127.0.0.1:8080/x", None, "apprise"),
    ("form://127.0.0.1:8080/x", None, "apprise"),
    ("discord://{DISCORD_ID}/{DISCORD_TOKEN}", None, "apprise"),
    ("{WHOLE_URL}", None, "apprise"),
    ("mailto://me:{PW}@127.0.0.1:2525?mode=insecure&from=a@b.io&to=c@d.io", None, "apprise"),
])
def test_classify_accepts(url, secret_env, kind):
    assert classify(url, secret_env, ENV) == kind


@pytest.mark.parametrize("url,secret_env,reason", [
    ("bogus://x", None, "not a URL Apprise accepts"),
    ("discord://", None, "not a URL Apprise accepts"),
    ("127.0.0.1/hook", None, "has no scheme"),
    ("https://127.0.0.1/hook", None, "needs --secret-env"),
    ("https://127.0.0.1:99999/hook", "HOOK_SECRET", "webhook URL is invalid"),
    ("https:///hook", "HOOK_SECRET", "names no host"),
    ("https://u:literal@127.0.0.1/hook", "HOOK_SECRET", "password in plain text"),
    ("https://127.0.0.1/hook", "UNSET_SECRET", "UNSET_SECRET is not set"),
    ("discord://{DISCORD_ID}/{NOPE}", None, "NOPE is not set"),
    ("discord://1234567890/abcdefTOKEN", None, "token or password in plain text"),
    ("mailto://me:pw@127.0.0.1?from=a@b.io&to=c@d.io", None, "token or password in plain text"),
    ("json://127.0.0.1/x", "HOOK_SECRET", "--secret-env is for webhooks"),
    ("", None, "1 to 2000"),
])
def test_classify_refuses_with_one_line(url, secret_env, reason):
    with pytest.raises(InvalidDestination, match=reason.replace("-", "\\-")) as exc:
        classify(url, secret_env, ENV)
    assert "\n" not in str(exc.value)
    for value in ("abcdefTOKEN", "hs"):
        assert value not in str(exc.value)


@pytest.mark.parametrize("text,expected", [("5/2s", RateLimit(5, 2.0)), ("1/1", RateLimit(1, 1.0)),
                                           (" 60 / 60s ", RateLimit(60, 60.0)), ("3/0.5s", RateLimit(3, 0.5))])
def test_parse_rate(text, expected):
    assert parse_rate(text) == expected
    assert parse_rate(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "5", "0/2s", "5/0", "-1/2", "a/b", "5/2m", "20000/1s"])
def test_parse_rate_refuses(text):
    with pytest.raises(InvalidDestination):
        parse_rate(text)


def test_default_limits_follow_the_services():
    assert default_limit("apprise", "discord") == RateLimit(5, 2.0)
    assert default_limit("apprise", "tgram") == RateLimit(1, 1.0)
    assert default_limit("apprise", "slack") == RateLimit(1, 1.0)
    assert default_limit("apprise", "mailto") == RateLimit(6, 60.0)
    assert default_limit("apprise", "pover") == RateLimit(1, 1.0)
    assert default_limit("apprise", "json") is None
    assert default_limit("webhook", "https") is None
    d = Destination(1, "d", "apprise", "discord://{A}/{B}", rate=RateLimit(2, 10.0))
    assert d.rate_limit() == RateLimit(2, 10.0)


def test_display_url_never_shows_a_webhook_path():
    assert Destination(1, "w", "webhook", "https://u:p@h.example:8443/t0ken?k=v").display_url() == \
        "https://h.example:8443/..."
    assert Destination(1, "w", "webhook", "https://h.example").display_url() == "https://h.example"
    assert Destination(1, "w", "webhook", "{HOOK_URL}").display_url() == "{HOOK_URL}"
    assert Destination(1, "a", "apprise", "tgram://{BOT}/{CHAT}").display_url() == "tgram://{BOT}/{CHAT}"


# --- subscriptions ---------------------------------------------------------------------------

TIERS = {(1, "BTC-USD"): 1, (1, "FOO-USD"): 2}


def tier_of(e, s):
    return TIERS.get((e, s))


def test_each_filter_matches_and_refuses():
    a = make_alert(0)  # coinbase BTC-USD 1h level_-200
    ok = [Subscription(1, 1), Subscription(1, 1, exchange_id=1), Subscription(1, 1, symbols=("BTC-USD", "X")),
          Subscription(1, 1, tiers=(1,)), Subscription(1, 1, timeframes=("1h",)), Subscription(1, 1, types=("level",)),
          Subscription(1, 1, min_level=200), Subscription(1, 1, min_level=150)]
    no = [Subscription(1, 1, exchange_id=2), Subscription(1, 1, symbols=("ETH-USD",)), Subscription(1, 1, tiers=(2,)),
          Subscription(1, 1, timeframes=("5m", "4h")), Subscription(1, 1, types=("reversal",)),
          Subscription(1, 1, min_level=250)]
    assert all(matches(s, a, tier_of) for s in ok)
    assert not any(matches(s, a, tier_of) for s in no)
    rev = make_alert(0, label="reversal_oversold", level=None)
    assert matches(Subscription(1, 1, min_level=300), rev, tier_of)  # min_level filters level alerts only
    unknown = make_alert(0, symbol="NEW-USD")
    assert not matches(Subscription(1, 1, tiers=(1, 2)), unknown, tier_of)


def test_route_sends_once_per_destination():
    subs = [Subscription(1, 7), Subscription(2, 7, timeframes=("1h",)), Subscription(3, 3, exchange_id=2),
            Subscription(4, 5, symbols=("BTC-USD",))]
    assert route(make_alert(0), subs, tier_of) == [5, 7]


def test_check_filters_normalises_and_refuses():
    assert check_filters(symbols=["A-USD", "A-USD"], tiers=[2, 1, 2], timeframes=["1h", "1h"], types=["level"],
                         min_level=200) == {"symbols": ("A-USD",), "tiers": (1, 2), "timeframes": ("1h",),
                                            "types": ("level",), "min_level": 200.0}
    assert check_filters() == {"symbols": None, "tiers": None, "timeframes": None, "types": None, "min_level": None}
    for kwargs, reason in [({"timeframes": ["3m"]}, "unknown timeframe '3m'"), ({"types": ["cross"]}, "alert type"),
                           ({"tiers": [3]}, "unknown tier 3"), ({"symbols": ["BTC:USD"]}, "rejected"),
                           ({"min_level": 0}, "min level"), ({"min_level": -5}, "min level")]:
        with pytest.raises(InvalidSubscription, match=reason):
            check_filters(**kwargs)


# --- sliding window --------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 6), window=st.sampled_from([0.5, 1.0, 2.0, 10.0]),
       gaps=st.lists(st.floats(0, 3, allow_nan=False), min_size=1, max_size=60))
def test_sliding_window_never_exceeds_its_limit(count, window, gaps):
    w = SlidingWindow(count, window)
    now, sent = 0.0, []
    for g in gaps:
        now += g
        at = w.next_free(now)
        assert at >= now
        w.take(at)
        sent.append(at)
        now = at
    for i in range(len(sent) - count):
        assert sent[i + count] - sent[i] >= window - 1e-9
    with pytest.raises(ValueError):
        full = SlidingWindow(1, 1.0)
        full.take(0.0)
        full.take(0.5)


# --- outbox ----------------------------------------------------------------------------------

def jobs(n, start=0):
    return [Job(make_alert(i), f"{i}-0") for i in range(start, start + n)]


def drive(box: Outbox, until: float, now: float = 0.0, fail=lambda b, t: None) -> list[tuple[float, Batch]]:
    """Run the outbox on a virtual clock: each batch "sends" at once; `fail(batch, t)` returns an
    error string to fail it."""
    sent = []
    while now <= until:
        action = box.next_send(now)
        if isinstance(action, Batch):
            sent.append((now, action))
            err = fail(action, now)
            if err:
                box.failed(action, now, err)
            else:
                box.succeeded()
            continue
        if action is None:
            break
        now = action
    return sent


def test_a_storm_of_2000_becomes_digests_within_the_limit():
    box = Outbox(RateLimit(5, 2.0), digest_max=5000)
    for j in jobs(2000):
        box.push(j)
    sent = drive(box, 60)
    assert len(sent) == 1 and sent[0][1].digest and len(sent[0][1].jobs) == 2000
    # trickling in: every 0.1 s for 60 s (600 alerts) -> never more than 5 messages per 2 s
    box = Outbox(RateLimit(5, 2.0), digest_max=5000)
    all_sent, now = [], 0.0
    for i, j in enumerate(jobs(600)):
        now = i * 0.1
        box.push(j)
        all_sent += drive(box, now, now)
    all_sent += drive(box, 1e9, now)
    times = [t for t, _ in all_sent]
    assert all(times[i + 5] - times[i] >= 2.0 for i in range(len(times) - 5))
    ids = [j.alert.id for _, b in all_sent for j in b.jobs]
    assert sorted(ids) == sorted(j.alert.id for j in jobs(600)) and len(set(ids)) == 600
    assert len(all_sent) <= 5 + 60 / 2 * 5  # within the limit over the minute
    assert any(b.digest for _, b in all_sent) and not all(b.digest for _, b in all_sent)


def test_alerts_go_one_by_one_while_the_limit_allows():
    box = Outbox(RateLimit(5, 2.0))
    for j in jobs(5):
        box.push(j)
    sent = drive(box, 10)
    assert [len(b.jobs) for _, b in sent] == [1] * 5 and not any(b.digest for _, b in sent)


def test_digest_max_splits_a_digest():
    box = Outbox(RateLimit(1, 1.0), digest_max=300)
    for j in jobs(700):
        box.push(j)
    sent = drive(box, 100)
    assert [len(b.jobs) for _, b in sent] == [300, 300, 100]
    assert [t for t, _ in sent] == [0.0, 1.0, 2.0]


def test_unlimited_destination_sends_in_parallel_up_to_concurrency():
    box = Outbox(None, concurrency=3)
    for j in jobs(5):
        box.push(j)
    batches = [box.next_send(0.0) for _ in range(4)]
    assert [isinstance(b, Batch) for b in batches] == [True, True, True, False]
    assert batches[3] is None


def test_failures_back_off_then_dead_letter_everything_waiting():
    policy = RetryPolicy(max_attempts=3, base_s=1.0, cap_s=8.0)
    box = Outbox(None, policy, concurrency=4, rng=lambda: 0.5)
    for j in jobs(3):
        box.push(j)
    b = box.next_send(0.0)
    assert box.failed(b, 0.0, "HTTP 503") == []
    assert box.retry_at == 0.75  # half of 1 s + half of the other half
    assert box.next_send(0.5) == 0.75
    b2 = box.next_send(0.75)
    assert box.next_send(0.75) is None  # failing: one probe at a time
    assert box.failed(b2, 0.75, "HTTP 503") == []
    b3 = box.next_send(box.retry_at)
    dead = box.failed(b3, box.retry_at, "HTTP 503")
    assert len(dead) == 3 and {j.last_error for j in dead} == {"HTTP 503"} and len(box) == 0
    assert all(j.attempts == 3 for j in dead)


def test_concurrent_failures_of_one_outage_count_once_for_the_queue():
    box = Outbox(None, RetryPolicy(max_attempts=2), concurrency=3, rng=lambda: 0.0)
    for j in jobs(4):
        box.push(j)
    b1, b2, b3 = (box.next_send(0.0) for _ in range(3))
    box.failed(b1, 0.0, "x")
    box.failed(b2, 0.0, "x")
    dead = box.failed(b3, 0.0, "x")
    assert dead == [] and box.failures == 1 and [j.attempts for j in box.queue] == [1, 1, 1, 1]


def test_success_resets_and_retry_after_is_honoured():
    box = Outbox(None, RetryPolicy(max_attempts=5), rng=lambda: 0.0)
    for j in jobs(2):
        box.push(j)
    b = box.next_send(0.0)
    box.failed(b, 0.0, "HTTP 429", retry_after=30.0)
    assert box.next_send(1.0) == 30.0
    b = box.next_send(30.0)
    box.succeeded()
    assert box.failures == 0 and [j.attempts for j in box.queue] == [0]


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 300), count=st.integers(1, 5), window=st.sampled_from([1.0, 2.0]),
       fail_p=st.floats(0, 0.6), seed=st.integers(0, 10_000))
def test_outbox_sends_or_dead_letters_every_alert_once_within_the_limit(n, count, window, fail_p, seed):
    rnd = random.Random(seed)
    box = Outbox(RateLimit(count, window), RetryPolicy(max_attempts=3, base_s=0.5, cap_s=4.0), rng=rnd.random)
    for j in jobs(n):
        box.push(j)
    delivered, dead, times, now = [], [], [], 0.0
    while True:
        action = box.next_send(now)
        if isinstance(action, Batch):
            times.append(now)
            if rnd.random() < fail_p:
                dead += box.failed(action, now, "down")
            else:
                box.succeeded()
                delivered += action.jobs
        elif action is None:
            break
        else:
            now = action
    ids = [j.alert.id for j in delivered + dead]
    assert len(ids) == len(set(ids)) == n
    assert all(times[i + count] - times[i] >= window - 1e-9 for i in range(len(times) - count))


# --- message text ----------------------------------------------------------------------------

def test_alert_text():
    a = make_alert(0)
    assert alert_title(a) == "BTC-USD 1h: MACD-V crossed -200 (oversold)"
    text = alert_text(a)
    assert "coinbase · BTC-USD · 1h" in text and "MACD-V -212.5 (signal -190.2, histogram -22.2)" in text
    assert "price 61,234.50" in text
    r = make_alert(0, label="reversal_overbought", level=None)
    assert alert_title(r) == "BTC-USD 1h: MACD-V reversal from overbought"


def test_digest_groups_by_symbol_then_timeframe():
    alerts = [make_alert(0, "ETH-USD", timeframe="4h"), make_alert(1, "BTC-USD"),
              make_alert(2, "BTC-USD", timeframe="5m"), make_alert(3, "BTC-USD")]
    lines = [line for line, _ in digest_lines(alerts)]
    assert lines[0] == "BTC-USD (coinbase)" and lines[1].startswith("  1h: crossed -200") and lines[1].count(",") == 1
    assert lines[2].startswith("  5m:") and lines[3] == "ETH-USD (coinbase)" and lines[4].startswith("  4h:")
    assert digest_title(alerts) == "Livermore: 4 MACD-V alerts on 2 symbols"
    assert "more" not in digest_text(alerts, 2000)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 400), symbols=st.integers(1, 60), max_chars=st.integers(80, 4096))
def test_digest_text_fits_and_accounts_for_every_alert(n, symbols, max_chars):
    tfs = ("5m", "15m", "1h", "4h", "1d")
    alerts = [make_alert(i, f"S{i % symbols}-USD", timeframe=tfs[i % 5]) for i in range(n)]
    text = digest_text(alerts, max_chars)
    assert len(text) <= max_chars
    listed = sum(line.count("crossed") for line in text.splitlines())
    more = int(text.rsplit("... and ", 1)[1].split()[0]) if "... and " in text else 0
    assert listed + more == n


# --- webhook signature -----------------------------------------------------------------------

def test_signature_verifies_and_rejects_tampering_and_replays():
    payload = body([make_alert(0)], False)
    sig = sign(b"k", 1000, payload)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify_signature(b"k", "1000", payload, sig, now=1100)
    assert not verify_signature(b"k", "1000", payload + b" ", sig, now=1100)
    assert not verify_signature(b"other", "1000", payload, sig, now=1100)
    assert not verify_signature(b"k", "1001", payload, sig, now=1100)
    assert not verify_signature(b"k", "1000", payload, sig, now=1000 + 301)  # replayed later
    assert not verify_signature(b"k", None, payload, sig, now=1000)
    assert not verify_signature(b"k", "x", payload, sig, now=1000)


def test_webhook_body_and_delivery_ids():
    alerts = [make_alert(i) for i in range(3)]
    one = decode_body(body(alerts[:1], False))
    assert one.kind == "alert" and one.count == 1 and one.alerts == alerts[:1]
    many = decode_body(body(alerts, True))
    assert many.kind == "digest" and many.count == 3 and many.alerts == alerts
    assert delivery_id(alerts[:1], False) == alerts[0].id
    assert delivery_id(alerts, True) == delivery_id(list(reversed(alerts)), True)
    assert delivery_id(alerts, True) != delivery_id(alerts[:2], True)
