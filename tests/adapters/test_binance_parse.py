"""The Binance kline recording through the parser and the kline book."""

from __future__ import annotations

import json

import pytest

from streaming.adapters.binance.kline_book import KlineBook
from streaming.adapters.binance.parse import ACK, ERROR, KLINE, OTHER, SHUTDOWN, parse_frame
from streaming.adapters.skips import UNKNOWN_INTERVAL, BadFrame
from streaming.models import Candle
from tests.adapters.recordings import binance_frames


def test_recording_parses_into_its_klines(recordings_dir):
    msgs = [parse_frame(f) for f in binance_frames(recordings_dir)]
    assert len(msgs) == 7
    assert all(m.kind == KLINE and m.interval == "1m" for m in msgs)
    assert [m.symbol for m in msgs] == ["NKNUSDT", "LRCBTC"] + ["OMGBUSD"] * 5
    assert [m.closed for m in msgs] == [False] * 5 + [True, False]
    final = msgs[5]
    assert final.candle == Candle(1633998240000, 13.7212, 13.8076, 13.7212, 13.7664, 536.51)
    assert msgs[1].candle.close == 6.38e-06

    book = KlineBook("binance")
    out = [book.on_kline((m.symbol, m.interval), 60_000, m.candle, m.closed) for m in msgs]
    closes = [u for u in out if u is not None and u.closed]
    assert len(closes) == 1 and closes[0].candle == final.candle and closes[0].symbol == "OMGBUSD"
    assert book.gap_start(("OMGBUSD", "1m"), 1633998300000) is None


def test_raw_stream_acks_errors_and_shutdown():
    raw = {"e": "kline", "E": 1, "s": "BTCUSDT", "k": {"t": 1633998000000, "T": 0, "s": "BTCUSDT", "i": "5m",
                                                       "o": "1", "c": "2", "h": "3", "l": "0.5", "v": "9",
                                                       "x": True}}
    m = parse_frame(json.dumps(raw))
    assert m.kind == KLINE and m.closed and m.candle.high == 3.0
    assert parse_frame('{"result":null,"id":7}').kind == ACK
    err = parse_frame('{"error":{"code":2,"msg":"Invalid request"},"id":8}')
    assert err.kind == ERROR and err.id == 8 and "Invalid request" in err.error
    assert parse_frame('{"stream":"x","data":{"e":"serverShutdown","E":1}}').kind == SHUTDOWN
    assert parse_frame('{"e":"serverShutdown","E":1}').kind == SHUTDOWN
    assert parse_frame('{"stream":"btcusdt@trade","data":{"e":"trade"}}').kind == OTHER
    raw["k"]["i"] = "7m"
    with pytest.raises(BadFrame) as exc:
        parse_frame(json.dumps(raw))
    assert exc.value.kind == UNKNOWN_INTERVAL


@pytest.mark.parametrize("interval", ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                                      "1d", "3d", "1w", "1M"])
def test_every_native_interval_parses(interval):
    frame = {"stream": "a", "data": {"e": "kline", "k": {"t": 1633996800000, "s": "ETHBTC", "i": interval,
                                                         "o": "1", "c": "1", "h": "1", "l": "1", "v": "0",
                                                         "x": False}}}
    assert parse_frame(json.dumps(frame)).interval == interval
