"""Sensors evaluated with build_sensor_context on a real instance, real Redis and both databases."""

import json
from datetime import UTC, datetime

import dagster as dg
import sqlalchemy as sa

from livermore_pipelines.sensors import alert_archive_sensor, worker_health_sensor
from streaming import keys
from streaming.control.heartbeat import heartbeat_record
from streaming.db.schema import alert_history


def _context(instance, resources, cursor=None):
    return dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)


def _by_name(redis_client):
    redis_client.hset(keys.EXCHANGES_BY_NAME, mapping={"coinbase": 1, "binance": 2, "binance_us": 3})


def _alert(label: str, ts: int) -> str:
    return json.dumps({"id": f"1:BTC-USD:5m:{ts}:{label}", "source_exchange_id": 1, "source_exchange": "coinbase",
                       "symbol": "BTC-USD", "timeframe": "5m", "type": "level", "label": label, "level": 150,
                       "macd_v": 151.0, "signal": 140.0, "histogram": 11.0, "price": 65000.0, "timestamp": ts,
                       "triggered_at": "2026-08-09T21:10:00+00:00"})


def test_alert_archive_moves_cursor_and_is_idempotent(resources, engine, redis_client, instance):
    redis_client.xadd(keys.ALERTS_STREAM, {"json": _alert("level_150", 1_000)})
    last = redis_client.xadd(keys.ALERTS_STREAM, {"json": _alert("level_200", 2_000)})
    result = alert_archive_sensor(_context(instance, resources))
    assert isinstance(result, dg.SensorResult) and result.cursor == last
    # what it archived is a runless materialization of alert_history
    [event] = result.asset_events
    assert isinstance(event, dg.AssetMaterialization) and event.asset_key == dg.AssetKey("alert_history")
    assert event.metadata["archived"].value == 2 and event.metadata["stream_cursor"].value == last
    # a re-run from the start (lost cursor) inserts nothing twice, and says so
    again = alert_archive_sensor(_context(instance, resources))
    assert again.asset_events == [] and again.cursor == last and "no new alert" in again.skip_reason.skip_message
    newer = redis_client.xadd(keys.ALERTS_STREAM, {"json": _alert("level_250", 3_000)})
    third = alert_archive_sensor(_context(instance, resources, cursor=last))
    assert third.cursor == newer and third.asset_events[0].metadata["archived"].value == 1
    quiet = alert_archive_sensor(_context(instance, resources, cursor=newer))
    assert isinstance(quiet, dg.SkipReason) and "no new alert" in quiet.skip_message
    with engine.connect() as conn:
        ids = conn.execute(sa.select(alert_history.c.alert_id).order_by(alert_history.c.candle_time)).scalars().all()
    assert ids == ["1:BTC-USD:5m:1000:level_150", "1:BTC-USD:5m:2000:level_200", "1:BTC-USD:5m:3000:level_250"]


def test_worker_health_requests_restart_of_orphaned_exchange(resources, redis_client, instance):
    _by_name(redis_client)
    redis_client.hset(keys.exchange_status(1), mapping={"connection_state": "connected"})
    redis_client.hset(keys.exchange_status(2), mapping={"connection_state": "disconnected"})
    ctx = _context(instance, resources)
    requests = list(worker_health_sensor(ctx))
    assert len(requests) == 1 and isinstance(requests[0], dg.RunRequest)
    assert requests[0].run_config == {"ops": {"start_exchange_streaming": {"config": {"exchange": "coinbase"}}}}
    assert "coinbase" in json.loads(ctx.cursor)
    # the next tick within the cooldown does not pile up restarts
    later = list(worker_health_sensor(_context(instance, resources, cursor=ctx.cursor)))
    assert len(later) == 1 and isinstance(later[0], dg.SkipReason) and "already requested" in later[0].skip_message


def test_worker_health_quiet_when_a_live_worker_serves_the_exchange(resources, redis_client, instance):
    _by_name(redis_client)
    redis_client.hset(keys.exchange_status(1), mapping={"connection_state": "connected"})
    beat = heartbeat_record("w1", datetime.now(UTC).isoformat(), {"coinbase": "connected"}, None, None)
    redis_client.hset(keys.WORKERS, "w1", json.dumps(beat))
    result = list(worker_health_sensor(_context(instance, resources)))
    assert len(result) == 1 and isinstance(result[0], dg.SkipReason) and "healthy" in result[0].skip_message


def test_worker_health_finds_exchanges_from_database_without_redis_hash(resources, redis_client, instance):
    redis_client.hset(keys.exchange_status(3), mapping={"connection_state": "connecting"})
    requests = list(worker_health_sensor(_context(instance, resources)))
    assert [r.tags["exchange"] for r in requests if isinstance(r, dg.RunRequest)] == ["binance_us"]
