"""Property-based fuzzing of both frame parsers (hypothesis, 2,500 cases each, deterministic).

Inputs: random mutations of the real recorded frames, frame-shaped JSON with huge numbers and far
timestamps, deep nesting (alone and inside frames), invalid UTF-8. Property: a parser returns a
message or raises BadFrame of a known kind, never anything else; every candle in a message is
finite, consistent, aligned and within the timestamp bounds.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.adapters.binance.parse import INTERVAL_MS, KLINE
from streaming.adapters.binance.parse import parse_frame as binance_parse
from streaming.adapters.coinbase.parse import FIVE_MINUTES_MS
from streaming.adapters.coinbase.parse import parse_frame as coinbase_parse
from streaming.adapters.skips import KINDS, BadFrame
from streaming.adapters.validate import MAX_PRICE, MAX_TS_MS, MAX_VOLUME, MIN_TS_MS
from streaming.models import Candle
from streaming.sim.config import PACKAGED_RECORDINGS
from tests.adapters.recordings import binance_frames, coinbase_frames

CASES = 2_500  # the same cases every run (derandomized); fewer for CI time (10,000 took ~40 s more than 4,000)
RECORDINGS = PACKAGED_RECORDINGS
CB_FRAMES = [f.encode() for f in coinbase_frames(RECORDINGS)]
BN_FRAMES = [f.encode() for f in binance_frames(RECORDINGS)]

FUZZ = settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

# -- building blocks
huge_ints = st.one_of(st.integers(), st.integers(min_value=10**18, max_value=10**400).map(lambda n: n if n % 2 else -n))
numbers = st.one_of(huge_ints, st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([0, -0.0, 1e308, -1e308, 5e-324, 2**63, 2**64, -(2**63) - 1]))
number_texts = st.one_of(numbers.map(str), st.sampled_from(
    ["NaN", "nan", "Infinity", "-inf", "1e999", "1e400", "", " 1", "1_000", "0x10", "١٢٣", "1e-400", "+5", "--1"]))
# open times: real, misaligned, in seconds instead of ms, far past, far future, absurd
far_ms = st.one_of(st.integers(MIN_TS_MS - 10**6, MAX_TS_MS + 10**6), st.integers(-(10**20), 10**20),
                   st.sampled_from([0, -1, 1_786_309_500_000, 4_070_908_800_000, 253_402_300_799_000, 2**62, 2**63]))
junk = st.recursive(st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=4)
field_value = st.one_of(number_texts, numbers, junk)


def deep(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


# -- frame-shaped JSON: half of them clean (valid frames with believable, varied candles), the
# other half with any field replaced by junk, huge numbers or far times
@st.composite
def ohlcv(draw: st.DrawFn) -> tuple[float, float, float, float, float]:
    low = draw(st.floats(1e-9, 1e7))
    high = low * (1 + draw(st.floats(0, 2)))
    o, c = (low + (high - low) * draw(st.floats(0, 1)) for _ in range(2))
    return o, high, low, c, draw(st.floats(0, 1e9))


def as_wire(value: float, draw: st.DrawFn) -> object:
    return draw(st.sampled_from([str(value), value, f"{value:.8f}", repr(value)]))


@st.composite
def coinbase_candle(draw: st.DrawFn, clean: bool) -> dict:
    start_s = draw(st.integers(MIN_TS_MS // 300_000 + 1, MAX_TS_MS // 300_000 - 1)) * 300
    c: dict[str, object] = {"start": draw(st.sampled_from([str(start_s), start_s])),
                            "product_id": draw(st.sampled_from(["BTC-USD", "ETH-USD", "SIM1-USD"]))}
    for name, value in zip(("open", "high", "low", "close", "volume"), draw(ohlcv()), strict=True):
        c[name] = as_wire(value, draw)
    if not clean:
        for name in draw(st.lists(st.sampled_from(sorted(c)), min_size=1, max_size=3, unique=True)):
            c[name] = draw(st.one_of(far_ms.map(lambda ms: str(ms // 1000)), field_value)) if name == "start" \
                else draw(field_value)
        if draw(st.booleans()):
            del c[draw(st.sampled_from(sorted(c)))]
    return c


@st.composite
def coinbase_json(draw: st.DrawFn) -> bytes:
    clean = draw(st.booleans())
    kind = draw(st.sampled_from(["candles", "candles", "heartbeats", "subscriptions"]))
    if kind == "candles":
        events: list[object] = [{"type": draw(st.sampled_from(["snapshot", "update"])),
                                 "candles": draw(st.lists(coinbase_candle(clean), min_size=1, max_size=3))}
                                for _ in range(draw(st.integers(1, 2)))]
    elif kind == "heartbeats":
        events = [{"current_time": "2026-08-09 21:05:51", "heartbeat_counter": draw(huge_ints)}]
    else:
        events = [{"subscriptions": draw(st.dictionaries(st.sampled_from(["candles", "heartbeats"]),
                                                         st.lists(st.text(max_size=8), max_size=3)))}]
    frame: dict[str, object] = {
        "channel": kind, "events": events, "sequence_num": draw(huge_ints),
        "timestamp": draw(st.sampled_from(["2026-08-09T21:05:51.491081826Z", "9999-12-31T23:59:59Z",
                                           "0001-01-01T00:00:00+01:00", "junk"]))}
    if not clean:
        name = draw(st.sampled_from(sorted(frame)))
        frame[name] = draw(st.one_of(junk, st.text(max_size=10)))
    return json.dumps(frame).encode()


@st.composite
def binance_json(draw: st.DrawFn) -> bytes:
    clean = draw(st.booleans())
    interval = draw(st.sampled_from(["5m", "15m", "1h", "4h", "1d", "1m", "1s", "1w", "1M"]))
    step = INTERVAL_MS.get(interval) or 60_000
    t = draw(st.integers(MIN_TS_MS // step + 1, MAX_TS_MS // step - 1)) * step
    k: dict[str, object] = {"t": t, "T": t + step - 1, "s": draw(st.sampled_from(["BTCUSDT", "SIM1USDT"])),
                            "i": interval, "x": draw(st.booleans())}
    for name, value in zip(("o", "h", "l", "c", "v"), draw(ohlcv()), strict=True):
        k[name] = as_wire(value, draw)
    if not clean:
        for name in draw(st.lists(st.sampled_from(sorted(k)), min_size=1, max_size=3, unique=True)):
            k[name] = draw(st.one_of(far_ms, field_value)) if name in ("t", "T") else draw(field_value)
        if draw(st.booleans()):
            del k[draw(st.sampled_from(sorted(k)))]
    event = {"e": "kline", "E": t, "s": k.get("s"), "k": k}
    shape = draw(st.sampled_from(["combined", "combined", "raw", "reply", "error", "shutdown"]))
    if shape == "combined":
        body: object = {"stream": "btcusdt@kline_5m", "data": event}
    elif shape == "raw":
        body = event
    elif shape == "reply":
        body = {"result": draw(junk), "id": draw(st.one_of(huge_ints, junk))}
    elif shape == "shutdown":
        body = {"e": "serverShutdown", "E": draw(far_ms)}
    else:
        body = draw(st.sampled_from([{"code": draw(junk), "msg": draw(junk)},
                                     {"error": {"code": draw(junk), "msg": draw(st.text())}, "id": draw(junk)}]))
    return json.dumps(body).encode()


# -- hostile transformations of any frame
@st.composite
def mutated(draw: st.DrawFn, frames: list[bytes]) -> bytes:
    raw = bytearray(draw(st.sampled_from(frames)))
    digits = [i for i, b in enumerate(raw) if 48 <= b <= 57]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["digit", "digit", "flip", "insert", "delete", "cut", "dup", "token"]))
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "digit" and digits and raw:  # still valid JSON, other values: prices, times, counters
            i = draw(st.sampled_from(digits)) % len(raw)
            if 48 <= raw[i] <= 57:
                raw[i] = draw(st.integers(48, 57))
        elif op == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif op == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and raw:
            del raw[at:at + draw(st.integers(1, 16))]
        elif op == "cut":
            raw = raw[:at]
        elif op == "dup":
            raw[at:at] = raw[at:at + draw(st.integers(1, 64))]
        else:
            raw[at:at] = draw(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b",", b":", b"null", b"1e999",
                                               b"9" * 400, b"\xff", b"\xed\xa0\x80", b"\\u0000", b"-"]))
    return bytes(raw)


@st.composite
def nested(draw: st.DrawFn, frames: list[bytes]) -> bytes:
    depth = draw(st.integers(200, 5000))
    inner = deep(depth) if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
    frame = draw(st.sampled_from(frames)).decode()
    where = draw(st.sampled_from(["alone", "value"]))
    if where == "alone":
        return inner.encode()
    cut = frame.index(":") + 1  # as the value of the frame's first field
    return (frame[:cut] + inner + frame[cut:].split(",", 1)[-1].join(["," if "," in frame[cut:] else "", ""])).encode()


@st.composite
def bad_utf8(draw: st.DrawFn, frames: list[bytes]) -> bytes:
    raw = draw(st.sampled_from(frames))
    quotes = [i for i, b in enumerate(raw) if b == ord('"')]
    at = draw(st.sampled_from(quotes)) + 1 if quotes else 0
    return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf",
                                            b"\xe2\x82"])) + raw[at:]


def hostile(frames: list[bytes], shaped: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(shaped, mutated(frames), nested(frames), bad_utf8(frames), st.binary(max_size=64))


# -- the property
def sane(candle: Candle, step: int) -> None:
    values = (candle.open, candle.high, candle.low, candle.close, candle.volume)
    assert all(isinstance(v, float) and math.isfinite(v) for v in values), candle
    assert 0 < candle.low <= min(candle.open, candle.close) <= max(candle.open, candle.close) <= candle.high, candle
    assert candle.high <= MAX_PRICE and 0 <= candle.volume <= MAX_VOLUME, candle
    assert MIN_TS_MS <= candle.timestamp < MAX_TS_MS and candle.timestamp % step == 0, candle


def outcome(parse, raw: bytes):
    try:
        return parse(raw)
    except BadFrame as bad:
        assert bad.kind in KINDS
        return None


@FUZZ
@given(hostile(CB_FRAMES, coinbase_json()))
def test_coinbase_parser_property(raw):
    msg = outcome(coinbase_parse, raw)
    if msg is None:
        return
    assert isinstance(msg.channel, str) and msg.channel
    for bad in msg.bad:
        assert isinstance(bad, BadFrame) and bad.kind in KINDS
    for symbol, candle in msg.updates:
        assert isinstance(symbol, str) and symbol
        sane(candle, FIVE_MINUTES_MS)
    for symbol, candles in msg.snapshots.items():
        assert isinstance(symbol, str) and symbol and candles
        for candle in candles:
            sane(candle, FIVE_MINUTES_MS)


@FUZZ
@given(hostile(BN_FRAMES, binance_json()))
def test_binance_parser_property(raw):
    msg = outcome(binance_parse, raw)
    if msg is None or msg.kind != KLINE:
        return
    assert msg.candle is not None and isinstance(msg.symbol, str) and msg.symbol
    step = INTERVAL_MS[msg.interval]
    sane(msg.candle, step or 1)
    assert isinstance(msg.closed, bool)


@pytest.mark.parametrize("parse,frames", [(coinbase_parse, CB_FRAMES), (binance_parse, BN_FRAMES)],
                         ids=["coinbase", "binance"])
def test_the_generators_reach_valid_messages_too(parse, frames):
    # the property above is only worth something if the recorded frames themselves parse
    assert all(outcome(parse, f) is not None for f in frames)
