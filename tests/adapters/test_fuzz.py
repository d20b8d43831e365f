"""10,000+ generated bad frames per parser: never a crash, every skip counted under its kind."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable

import pytest

from streaming.adapters import skips as k
from streaming.adapters.binance.parse import parse_frame as binance_parse
from streaming.adapters.coinbase.parse import parse_frame as coinbase_parse
from streaming.adapters.skips import BadFrame, SkipCounter

N = 10_000
MAX_BYTES = 2_000

COINBASE_OK = {"channel": "candles", "timestamp": "2026-08-09T21:05:51.491081826Z", "sequence_num": 138,
               "events": [{"type": "update", "candles": [
                   {"start": "1786309500", "high": "1919.6", "low": "1919.27", "open": "1919.58",
                    "close": "1919.41", "volume": "36.36630914", "product_id": "ETH-USD"}]}]}
BINANCE_OK = {"stream": "omgbusd@kline_1m", "data": {"e": "kline", "E": 1633998301755, "s": "OMGBUSD", "k": {
    "t": 1633998240000, "T": 1633998299999, "s": "OMGBUSD", "i": "1m", "f": 439572, "L": 439585,
    "o": "13.72120000", "c": "13.76640000", "h": "13.80760000", "l": "13.72120000", "v": "536.51000000",
    "n": 19, "x": True, "q": "7380.5", "V": "1", "Q": "1", "B": "0"}}}

PRICE_FIELDS = {"coinbase": ("open", "high", "low", "close"), "binance": ("o", "h", "l", "c")}


def _candle(exchange: str, frame: dict) -> dict:
    return frame["events"][0]["candles"][0] if exchange == "coinbase" else frame["data"]["k"]


def make_bad(exchange: str, rng: random.Random) -> tuple[str, str]:
    """One bad frame and the kind it must be counted under."""
    ok = COINBASE_OK if exchange == "coinbase" else BINANCE_OK
    frame = json.loads(json.dumps(ok))
    c = _candle(exchange, frame)
    prices = PRICE_FIELDS[exchange]
    volume = "volume" if exchange == "coinbase" else "v"
    ts_field = "start" if exchange == "coinbase" else "t"
    choice = rng.randrange(10)
    if choice == 0:
        text = json.dumps(frame)
        # cut right after a complete value: a type check can't fire before the truncation is seen
        cuts = [i for i, ch in enumerate(text) if ch == ","]
        return text[: rng.choice(cuts)] + rng.choice(["", " ", ",", "\x00"]), k.INVALID_JSON
    if choice == 1:
        return json.dumps(frame) + " " * MAX_BYTES, k.OVERSIZED
    if choice == 2:
        del c[rng.choice([*prices, volume, ts_field])]
        return json.dumps(frame), k.SCHEMA
    if choice == 3:
        c[rng.choice([*prices, volume])] = rng.choice([None, [], {}, True])
        return json.dumps(frame), k.SCHEMA
    if choice == 4:
        c[rng.choice([*prices, volume])] = rng.choice(["abc", "", "1.2.3", "0x10", "--1", "1,5"])
        return json.dumps(frame), k.BAD_NUMBER
    if choice == 5:
        c[rng.choice([*prices, volume])] = rng.choice(["NaN", "nan", "inf", "-Infinity", "1e999"])
        return json.dumps(frame), k.NON_FINITE
    if choice == 6:
        field = rng.choice([*prices, volume])
        c[field] = rng.choice(["0", "-1", "-0.5"]) if field != volume else rng.choice(["-1", "-3.5"])
        return json.dumps(frame), k.BAD_PRICE
    if choice == 7:
        low = rng.uniform(1, 1000)
        c[prices[1]], c[prices[2]] = str(low / 2), str(low)
        c[prices[0]] = c[prices[3]] = str(low * 0.75)
        return json.dumps(frame), k.HIGH_LOW
    if choice == 8:
        if exchange == "coinbase":
            c[ts_field] = rng.choice(["12", "99999999999", str(1786309500 + rng.randrange(1, 299)),
                                      "1786309500000"])
        else:
            c[ts_field] = rng.choice([12, 10**16, 1633998240000 + rng.randrange(1, 59_999)])
        return json.dumps(frame), k.BAD_TIMESTAMP
    if exchange == "coinbase":
        frame["sequence_num"] = rng.choice(["x", 1.5, [], None]) if rng.random() < 0.5 else None
        if frame["sequence_num"] is None:
            frame["events"] = rng.choice([{}, "x", 3, [{"type": "update", "candles": "no"}]])
        return json.dumps(frame), k.SCHEMA
    c[rng.choice(["t", "x", "s", "i"])] = rng.choice([None, 1.5, [], {}])
    return json.dumps(frame), k.SCHEMA


def feed(parse: Callable, frames: list[str], counter: SkipCounter) -> None:
    for raw in frames:
        try:
            msg = parse(raw, max_bytes=MAX_BYTES)
        except BadFrame as bad:
            counter.skip(bad.kind, bad.detail)
            continue
        for bad in getattr(msg, "bad", []):
            counter.skip(bad.kind, bad.detail)


@pytest.mark.parametrize("exchange,parse", [("coinbase", coinbase_parse), ("binance", binance_parse)])
def test_generated_bad_frames_are_counted_by_kind(exchange, parse, caplog):
    rng = random.Random(20260809)
    cases = [make_bad(exchange, rng) for _ in range(N)]
    expected = Counter(kind for _, kind in cases)
    counter = SkipCounter(logging.getLogger(f"fuzz.{exchange}"), exchange, log_interval=3600)
    with caplog.at_level(logging.WARNING):
        feed(parse, [f for f, _ in cases], counter)
    assert counter.counts == expected
    assert counter.total == N
    assert len(expected) == 8  # every kind generated
    # not flooding: one line per kind per interval
    assert len(caplog.records) <= len(expected)
    # the good frame still parses after all that
    good = parse(json.dumps(COINBASE_OK if exchange == "coinbase" else BINANCE_OK))
    assert good is not None


@pytest.mark.parametrize("parse", [coinbase_parse, binance_parse])
def test_random_bytes_never_crash(parse):
    rng = random.Random(7)
    alphabet = '{}[]":,0123456789.-eEtruefalsnl xkcandlesbinance\\'
    kinds = Counter()
    for _ in range(N):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        try:
            parse(raw)
        except BadFrame as bad:
            kinds[bad.kind] += 1
    assert sum(kinds.values()) >= N * 0.9
    assert set(kinds) <= set(k.KINDS)
