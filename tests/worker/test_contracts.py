"""The message contracts: what writers produce decodes with the Structs readers use, and bad
input gets a reason naming what is wrong."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from datetime import UTC, datetime

import msgspec
import pytest
import redis.asyncio as aioredis

from livermore_pipelines.universe_builder import build_universe, universe_document
from streaming import keys
from streaming.adapters.base import ConnectionState
from streaming.contracts.commands import CommandResponse
from streaming.contracts.market import AlertEvent, CloseEvent, IndicatorValue, decode_alert
from streaming.contracts.universe import UniverseError, decode_entries_leniently, decode_universe
from streaming.contracts.workers import ConnectionStateName, ExchangeStatus, Heartbeat, LifecycleEvent
from streaming.control.heartbeat import heartbeat_record
from streaming.control.responses import parse_responses, response
from streaming.models import Candle, CandleUpdate
from streaming.pipeline import CandlePipeline, PipelineConfig, pools_from_universe
from streaming.worker.publisher import EVENTS


def test_connection_states_are_the_adapters_states():
    assert set(ConnectionStateName.__args__) == {s.value for s in ConnectionState}
    assert set(EVENTS) == set(ConnectionState)


def test_the_universe_dagster_writes_is_the_universe_readers_decode():
    entries = build_universe(["BTC-USD", "ETH-USD"], [(7, "ETH-USD"), (9, "FOO-USD"), (7, "FOO-USD")])
    doc = universe_document(1, "coinbase", "2026-01-01T00:00:00+00:00", entries)
    raw = json.dumps(doc, sort_keys=True)  # as livermore_pipelines.store writes it
    universe = decode_universe(raw)
    assert universe.symbols == tuple(entries) and universe.exchange_id == 1
    assert decode_entries_leniently(raw) == (tuple(entries), ())
    pools = pools_from_universe(json.loads(raw))
    assert {s: (p.pool, p.users) for s, p in pools.items()} == {
        "BTC-USD": ("shared", ()), "ETH-USD": ("shared", (7,)), "FOO-USD": ("user", (7, 9))}


@pytest.mark.parametrize(("entry", "text"), [
    ({"symbol": "a:b"}, "Expected `str` matching regex"),
    ({"symbol": "X-USD", "pool": "user"}, "needs at least one user"),
    ({"symbol": "X-USD", "tier": 3}, "Invalid enum value 3"),
    ({"symbol": "X-USD", "users": [True]}, "Expected `int`, got `bool`"),
    ({"symbol": "X-USD", "users": [0]}, "Expected `int` >= 1"),
    ("junk", "Expected `object`, got `str`"),
])
def test_a_bad_universe_entry_is_named(entry, text):
    raw = json.dumps({"exchange_id": 1, "exchange": "coinbase", "updated_at": "2026-01-01T00:00:00+00:00",
                      "symbols": [{"symbol": "OK-USD"}, entry]})
    with pytest.raises(UniverseError, match="symbols"):
        decode_universe(raw)
    with pytest.raises(ValueError, match=r"^universe symbols\[1\]: .*" + re.escape(text)):
        pools_from_universe(json.loads(raw))
    entries, rejected = decode_entries_leniently(raw)
    assert [e.symbol for e in entries] == ["OK-USD"] and len(rejected) == 1 and text in rejected[0]


def test_universe_defaults_and_deep_nesting():
    entries, rejected = decode_entries_leniently('{"symbols": [{"symbol": "A-USD"}, {"symbol": "B-USD", '
                                                 '"pool": "user", "users": [9, 3, 9]}]}')
    assert [(e.tier, e.pool, e.users) for e in entries] == [(1, "shared", ()), (2, "user", (3, 9))] and not rejected
    with pytest.raises(UniverseError, match="not valid JSON"):
        decode_entries_leniently('{"symbols": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_heartbeat_lifecycle_status_and_responses_round_trip():
    record = heartbeat_record("w1", "2026-01-01T00:00:00.000+00:00", {"coinbase": "connected"}, "1/2", 3)
    beat = msgspec.json.decode(json.dumps(record), type=Heartbeat)
    assert (beat.worker_id, beat.exchanges, beat.shard, beat.user) == ("w1", {"coinbase": "connected"}, "1/2", 3)

    event = LifecycleEvent("exchange:connecting", 1, "coinbase", "w1", "connecting", None, "2026-01-01T00:00:00Z",
                           None)
    assert json.loads(msgspec.json.encode(event))["symbols"] is None  # always present
    assert msgspec.json.decode(msgspec.json.encode(event), type=LifecycleEvent) == event

    assert ExchangeStatus(last_heartbeat="t", updated_at="u").fields() == {"last_heartbeat": "t", "updated_at": "u"}

    answers = [response("c1", "w1", "ack", command="status"), b"not json", b'{"status": "success"}',
               response("c1", "w1", "success", result={"symbols": 2}, command="status")]
    parsed = parse_responses(answers)
    assert [r["status"] for r in parsed] == ["ack", "success"] and parsed[1]["result"] == {"symbols": 2}
    assert set(parsed[0]) == set(CommandResponse.__struct_fields__)


def _candles(fixtures_dir, n: int) -> list[Candle]:
    with open(fixtures_dir / "ohlcv" / "ETH_BTC-5m.csv") as fh:
        rows = list(csv.DictReader(fh))[:n]
    return [Candle(int(r["timestamp_ms"]), float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]),
                   float(r["volume"])) for r in rows]


async def test_what_a_real_pipeline_publishes_decodes_with_the_contracts(redis_url, fixtures_dir):
    """Close events are built as bytes for speed; they must still be CloseEvents (and the
    indicator values and alerts their Structs)."""
    candles = _candles(fixtures_dir, 400)

    async def go() -> tuple[list[tuple[bytes, bytes]], bytes, list[bytes]]:
        r = aioredis.Redis.from_url(redis_url)
        pubsub = r.pubsub()
        await pubsub.psubscribe(keys.candle_close_pattern(1), "settle")
        p = CandlePipeline(r, 1, "coinbase", symbol_pools=["ETH-BTC"], timeframes=("5m", "15m", "1h"),
                           native_timeframes=("5m",), config=PipelineConfig())
        got: list[tuple[bytes, bytes]] = []
        for i in range(0, len(candles), 50):
            await p.process([CandleUpdate("coinbase", "ETH-BTC", "5m", c, True, "websocket")
                             for c in candles[i:i + 50]])
        await r.publish("settle", b"done")  # delivered after everything published before it
        deadline = asyncio.get_running_loop().time() + 20
        while asyncio.get_running_loop().time() < deadline:
            m = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if m and m["channel"] == b"settle":
                break
            if m:
                got.append((m["channel"], m["data"]))
        else:
            raise AssertionError("the settle marker never arrived")
        indicator = await r.get(keys.indicator(1, "ETH-BTC", "5m"))
        alerts = [f[b"json"] for _, f in await r.xrange(keys.ALERTS_STREAM)]
        await pubsub.aclose()
        await r.aclose()
        return got, indicator, alerts

    got, indicator, alerts = await go()
    events = [(ch.decode(), msgspec.json.decode(data, type=CloseEvent)) for ch, data in got]
    assert {e.source for _, e in events} == {"websocket", "aggregate"}
    assert all(ch == keys.candle_close_channel(1, e.symbol, e.timeframe) for ch, e in events)
    five = [e for _, e in events if e.timeframe == "5m"]
    assert [e.timestamp for e in five] == [c.timestamp for c in candles]
    assert five[0].close == candles[0].close and five[0].exchange == "coinbase" and five[0].exchange_id == 1
    value = msgspec.json.decode(indicator, type=IndicatorValue)
    assert value.timestamp == five[-1].timestamp and value.macd_v is not None
    assert alerts, "the fixture's 400 bars fire alerts"
    for raw in alerts:
        alert = decode_alert(raw)
        assert isinstance(alert, AlertEvent) and alert.source_exchange == "coinbase"
        datetime.fromisoformat(alert.triggered_at).astimezone(UTC)
