"""Staging a close with no Redis at all: stage_close advances MACD-V and the alert rules and
encodes the CLOSE_BATCH spec; the script's outcomes, the boundary and the aggregated timeframes."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter

import msgspec
import pytest

from streaming import keys
from streaming.alerts.rules import AlertState, evaluate
from streaming.indicators import MacdV
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.close_script import CloseOutcome, parse_outcomes
from streaming.pipeline.config import SHARED, PipelineConfig, SymbolPool, aggregated_timeframes
from streaming.pipeline.events import close_event_json
from streaming.pipeline.staging import stage_close, stream_head
from streaming.pipeline.state import StreamState
from streaming.pipeline.streams import StreamStates
from streaming.pipeline.validation import close_rejection
from streaming.ratelog import RateLimitedLog
from streaming.store.alert_state import alert_state_fields
from streaming.timeframes import UnknownTimeframe

EX = 4
M5 = 300_000
T0 = 1_700_000_100_000 - 1_700_000_100_000 % M5
ALL = ("5m", "15m", "1h", "4h", "1d")


def bars(prices: list[float], start: int = T0) -> list[Candle]:
    return [Candle(start + i * M5, p, p * 1.01, p * 0.99, p, 1.0 + i % 3) for i, p in enumerate(prices)]


def up_then_down() -> list[Candle]:
    prices = [100.0 + (i % 2) * 0.3 for i in range(40)]
    for _ in range(60):
        prices.append(prices[-1] * 1.005)
    for _ in range(80):
        prices.append(prices[-1] * 0.995)
    return bars(prices)


def decode(spec: bytes) -> tuple:
    """The spec's parts, read as CLOSE_BATCH reads its flat array (streaming.store.scripts):
    (keys, ttl, channel, score, member, event, indicator, alert-state args, alerts, whole state)."""
    s = msgspec.msgpack.decode(spec)  # as the script's cmsgpack.unpack reads it
    k = s[0]
    ks, (ttl, channel, score, member, event, ind, n), rest = s[1:4 + k], s[4 + k:11 + k], s[11 + k:]
    fields, m = rest[:n], rest[n]
    alerts, whole = rest[n + 1:n + 1 + m], rest[n + 1 + m:]
    assert len(whole) == 1, s
    return ks, ttl, channel, score, member, event, ind, fields, alerts, whole[0]


def test_a_new_close_advances_macd_v_and_encodes_the_whole_spec():
    head = stream_head(EX, "binance", "ETHBTC", "5m", (), 86_400)
    state, oracle = StreamState(), MacdV()
    for c in bars([100.0 + i % 7 for i in range(40)]):
        spec, staged = stage_close(state, head, c, "websocket", 300_000)
        want = oracle.update(c.high, c.low, c.close)
        assert staged.expected_new and staged.symbol == "ETHBTC" and staged.timeframe == "5m" and staged.candle == c
    assert state.last == c and state.macd.to_dict() == oracle.to_dict()
    ks, ttl, channel, score, member, event, ind, fields, alerts, whole = decode(spec)
    assert ks == [keys.closed_marker(EX, "ETHBTC", "5m"), keys.indicator(EX, "ETHBTC", "5m"),
                  keys.alert_state(EX, "ETHBTC", "5m"), keys.candles(EX, "ETHBTC", "5m")]
    assert ttl == 0 and channel == keys.candle_close_channel(EX, "ETHBTC", "5m") and score == str(c.timestamp)
    assert json.loads(member) == {"timestamp": c.timestamp, "open": c.open, "high": c.high, "low": c.low,
                                  "close": c.close, "volume": c.volume}
    assert json.loads(event) == {"exchange_id": EX, "exchange": "binance", "symbol": "ETHBTC", "timeframe": "5m",
                                 "timestamp": c.timestamp, "open": c.open, "high": c.high, "low": c.low,
                                 "close": c.close, "volume": c.volume, "source": "websocket"}
    value = json.loads(ind)
    assert value["timestamp"] == c.timestamp and math.isclose(value["macd_v"], want.macd_v, rel_tol=1e-12)
    # the whole state went with the first close; since then only what changed, the whole beside it
    assert fields == ["prev_macd_v", repr(want.macd_v)]
    whole = json.loads(whole)
    assert dict(zip(whole[::2], whole[1::2], strict=True)) == alert_state_fields(state.alerts)
    assert alerts == []


def test_the_alert_state_goes_whole_until_stored_then_as_its_changes():
    head = stream_head(EX, "binance", "ETHBTC", "5m", (), 86_400)
    state = StreamState()
    cs = bars([100.0 + i % 7 for i in range(40)])
    *_, fields, _, whole = decode(stage_close(state, head, cs[0], "websocket", 300_000)[0])
    assert dict(zip(fields[::2], fields[1::2], strict=True)) == alert_state_fields(AlertState()) and whole == ""
    assert state.alerts_stored
    # no MACD-V yet: nothing changes, nothing is written
    *_, fields, _, whole = decode(stage_close(state, head, cs[1], "websocket", 300_000)[0])
    assert (fields, whole) == ([], "")
    # a state not known to be stored (rebuilt where the hash was absent or unreadable) goes whole
    state = StreamState(state.macd, state.last)
    assert not state.alerts_stored
    *_, fields, _, whole = decode(stage_close(state, head, cs[2], "websocket", 300_000)[0])
    assert len(fields) == 10 and whole == ""


def test_an_old_or_repeated_close_only_stores_and_leaves_state_alone():
    head = stream_head(EX, "binance", "ETHBTC", "5m", (), 86_400)
    cs = bars([100.0 + i % 5 for i in range(30)])
    state = StreamState()
    for c in cs:
        stage_close(state, head, c, "websocket", 300_000)
    before = (state.macd.to_dict(), state.last, state.alerts)
    for old in (cs[-1], cs[3], Candle(cs[-1].timestamp, 1.0, 2.0, 0.5, 1.5, 9.0)):
        spec, staged = stage_close(state, head, old, "rest", 300_000)
        assert not staged.expected_new
        _, _, _, score, member, event, ind, fields, alerts, whole = decode(spec)
        assert json.loads(member)["timestamp"] == old.timestamp
        assert score == str(old.timestamp) and json.loads(event)["source"] == "rest"
        assert (ind, fields, alerts, whole) == ("", [], [], "")
    assert (state.macd.to_dict(), state.last, state.alerts) == before


def test_alerts_are_staged_exactly_as_the_rules_fire():
    cs = up_then_down()
    m, st, want = MacdV(), AlertState(), []
    for c in cs:
        st, sigs = evaluate(st, m.update(c.high, c.low, c.close), c.timestamp + M5)
        want += [(c.timestamp, s.label) for s in sigs]
    assert any(label == "level_150" for _, label in want) and any(label == "level_-150" for _, label in want)
    head = stream_head(EX, "binance_us", "SOLUSDT", "5m", (), 86_400)
    state, got = StreamState(), []
    for c in cs:
        spec, _ = stage_close(state, head, c, "websocket", 300_000)
        for a in decode(spec)[8]:
            d = json.loads(a)
            assert d["id"] == f"{EX}:SOLUSDT:5m:{c.timestamp}:{d['label']}" and d["price"] == c.close
            got.append((d["timestamp"], d["label"]))
    assert got == want


def test_user_pool_streams_write_every_user_key_with_a_ttl():
    head = stream_head(EX, "coinbase", "FOO-USD", "1h", (7, 9), 3_600)
    spec, _ = stage_close(StreamState(), head, Candle(T0 - T0 % 3_600_000, 1, 2, 0.5, 1.5, 3), "aggregate", 0)
    ks, ttl = decode(spec)[:2]
    assert ks[3:] == [keys.user_candles(7, EX, "FOO-USD", "1h"), keys.user_candles(9, EX, "FOO-USD", "1h")]
    assert ttl == 3_600


def test_script_results_become_typed_outcomes():
    assert parse_outcomes(b"102", 3) == [CloseOutcome.PUBLISHED, CloseOutcome.DUPLICATE, CloseOutcome.CORRECTION]
    assert parse_outcomes("", 0) == []
    with pytest.raises(RuntimeError, match="2 results for 3 closes"):
        parse_outcomes(b"11", 3)
    with pytest.raises(RuntimeError, match="unknown result"):
        parse_outcomes(b"13", 2)


@pytest.mark.parametrize(("timeframes", "native", "aggregate", "built"), [
    (ALL, None, None, ()),  # nothing declared: every timeframe is native
    (ALL, ALL, None, ()),  # Binance
    (ALL, ("5m",), None, ("15m", "1h", "4h", "1d")),  # Coinbase
    (ALL, frozenset({"5m", "1h"}), None, ("15m", "4h", "1d")),
    (ALL, ("5m",), False, ()),
    (ALL, None, True, ("15m", "1h", "4h", "1d")),
    (("15m", "1h"), ("5m",), None, ()),  # nothing to build from
    (ALL, ("1h",), None, ()),
])
def test_aggregated_timeframes_follow_the_native_ones(timeframes, native, aggregate, built):
    assert aggregated_timeframes(timeframes, native, aggregate) == built


def test_native_timeframes_are_checked():
    with pytest.raises(ValueError, match="collection"):
        aggregated_timeframes(ALL, "5m")
    with pytest.raises(UnknownTimeframe):
        aggregated_timeframes(ALL, ("5m", "7m"))


@pytest.mark.parametrize(("update", "reason"), [
    ("garbage", "not_an_update"),
    (CandleUpdate("x", "NOPE", "5m", Candle(T0, 1, 2, 0.5, 1.5, 1), True), "unknown_symbol"),
    (CandleUpdate("x", "BTC-USD", "1m", Candle(T0, 1, 2, 0.5, 1.5, 1), True), "unknown_timeframe"),
    (CandleUpdate("x", "BTC-USD", "1h", Candle(T0, 1, 2, 0.5, 1.5, 1), True), "timeframe_aggregated_here"),
    (CandleUpdate("x", "BTC-USD", "5m", Candle(T0, 1, 2, 0.5, float("nan"), 1), True), "bad_candle:non_finite"),
    (CandleUpdate("x", "BTC-USD", "5m", Candle(T0, 1, 2, 0.5, 1.5, 1e308), True), "bad_candle:out_of_range"),
    (CandleUpdate("x", "BTC-USD", "5m", Candle(T0, 3, 2, 0.5, 1.5, 1), True), "bad_candle:inconsistent"),
    (CandleUpdate("x", "BTC-USD", "5m", Candle(T0 + 1, 1, 2, 0.5, 1.5, 1), True), "misaligned"),
    (CandleUpdate("x", "BTC-USD", "5m", Candle(T0, 1, 2, 0.5, 1.5, 1), True), None),
])
def test_the_boundary_names_why_it_refuses_an_update(update, reason):
    assert close_rejection(update, {"BTC-USD": None}, ("5m", "1h"), ("1h",)) == reason


def test_the_streams_of_a_symbol_share_one_close_event_opening_until_it_leaves():
    states = StreamStates(None, EX, "binance", {"AAA": SHARED, "BBB": SHARED}, (), PipelineConfig(), Counter(),
                          RateLimitedLog(logging.getLogger(__name__)))
    a5, a1h, b5 = (states.get_with_head(s)[1] for s in (("AAA", "5m"), ("AAA", "1h"), ("BBB", "5m")))
    assert a5.symbol_open is a1h.symbol_open and a5.symbol_open != b5.symbol_open
    c = Candle(T0, 1.0, 2.0, 0.5, 1.5, 3.0)
    for head in (a5, a1h, b5):
        event = decode(stage_close(StreamState(), head, c, "websocket", 0)[0])[5]
        assert event == close_event_json(EX, "binance", head.symbol, head.timeframe, c, "websocket").decode()
    states.set_pools({"AAA": SymbolPool("user", (7,))})  # AAA moves to a user pool, BBB leaves
    assert set(states._symbol_opens) == {"AAA"}
    assert states.get_with_head(("AAA", "5m"))[1].symbol_open is a5.symbol_open
