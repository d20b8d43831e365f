"""The whole Coinbase recording through the parser and the candle book."""

from __future__ import annotations

import json

import pytest

from streaming.adapters.coinbase.candle_book import CandleBook
from streaming.adapters.coinbase.parse import parse_frame, parse_time_ms
from streaming.adapters.skips import SCHEMA, BadFrame
from streaming.models import Candle
from tests.adapters.recordings import coinbase_frames


@pytest.fixture(scope="module")
def messages(recordings_dir):
    return [parse_frame(f) for f in coinbase_frames(recordings_dir)]


def test_every_frame_parses_and_channels_are_counted(messages):
    assert len(messages) == 255
    by_channel: dict[str, int] = {}
    for m in messages:
        by_channel[m.channel] = by_channel.get(m.channel, 0) + 1
        assert m.bad == []
    assert by_channel == {"ticker": 160, "market_trades": 59, "heartbeats": 25, "subscriptions": 5, "candles": 6}


def test_snapshots_hold_100_candles_with_gaps(messages):
    snaps = {sym: c for m in messages for sym, c in m.snapshots.items()}
    assert sorted(snaps) == ["BTC-USD", "ETH-USD"]
    btc = snaps["BTC-USD"]
    assert len(btc) == 100 and len(snaps["ETH-USD"]) == 100
    assert [c.timestamp for c in btc] == sorted(c.timestamp for c in btc)
    # 152 buckets spanned, 52 without trades: no candle invented for them
    assert (btc[-1].timestamp - btc[0].timestamp) // 300_000 + 1 == 152
    assert btc[0] == Candle(1786264200_000, 64830.72, 64841.44, 64830.71, 64841.44, 1.3176821)
    assert snaps["ETH-USD"][-1] == Candle(1786309500_000, 1919.58, 1919.6, 1919.27, 1919.44, 28.47308063)


def test_updates_heartbeats_and_acks(messages):
    updates = [u for m in messages for u in m.updates]
    assert [(s, c.close, c.volume) for s, c in updates] == [
        ("ETH-USD", 1919.41, 36.36630914), ("BTC-USD", 65083.67, 1.0555351),
        ("BTC-USD", 65083.67, 1.11745494), ("ETH-USD", 1919.42, 46.258414)]
    beats = [m.heartbeat for m in messages if m.channel == "heartbeats"]
    assert beats == list(range(41691, 41716))
    hb = next(m for m in messages if m.channel == "heartbeats")
    assert hb.time_ms == 1786309548856
    acks = [m.subscriptions for m in messages if m.subscriptions is not None]
    assert acks[-1]["candles"] == ["ETH-USD", "BTC-USD"]
    assert acks[-1]["heartbeats"] == ["heartbeats"]


def test_recording_through_the_book(messages):
    book = CandleBook(grace_ms=5_000)
    out = []
    for m in messages:
        for sym, candles in m.snapshots.items():
            out += book.snapshot(sym, candles)
        for sym, c in m.updates:
            out += book.update(sym, c)
    closed = [u for u in out if u.closed]
    assert len(closed) == 198  # 99 history candles per product; the last is still forming
    assert all(u.source == "websocket" and u.timeframe == "5m" for u in closed)
    assert book.forming["BTC-USD"].volume == 1.11745494
    assert book.forming["ETH-USD"].close == 1919.42
    # the clock closes the quiet bucket after its end + grace, once
    end = 1786309500_000 + 300_000
    assert book.on_clock(end + 4_999) == []
    late = book.on_clock(end + 5_000)
    assert {(u.symbol, u.candle.close) for u in late} == {("BTC-USD", 65083.67), ("ETH-USD", 1919.42)}
    assert book.on_clock(end + 60_000) == []


def test_heartbeat_counter_as_string_and_error_frames():
    frame = {"channel": "heartbeats", "timestamp": "2026-08-09T21:05:48.228846629Z", "sequence_num": 1,
             "events": [{"current_time": "x", "heartbeat_counter": "42"}]}
    assert parse_frame(json.dumps(frame)).heartbeat == 42
    with pytest.raises(BadFrame) as exc:
        parse_frame(json.dumps({"channel": "candles", "sequence_num": 1, "events": [{"type": "update"}]}))
    assert exc.value.kind == SCHEMA
    assert parse_time_ms("garbage") is None
