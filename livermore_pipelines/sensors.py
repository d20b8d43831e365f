"""Sensors: worker health (restart orphaned exchanges), alert archive (live_candles_sensor: live_sensor.py).

The connection-status table has one writer, the worker (streaming.worker.publisher).
"""

import json
import time
from collections.abc import Iterator

import dagster as dg
import redis as redis_lib
from dagster import SensorEvaluationContext

from livermore_pipelines import control
from livermore_pipelines.assets.live import ALERT_HISTORY
from livermore_pipelines.health import due_for_restart, orphaned_exchanges
from livermore_pipelines.jobs import start_streaming
from livermore_pipelines.resources import DatabaseResource, RedisResource
from streaming import exchange_ids, keys

RESTART_COOLDOWN_S = 120.0


def exchange_ids_of(r: redis_lib.Redis, database: DatabaseResource) -> dict[str, int]:
    """name -> id from the HASH the `exchanges` asset writes, else from the database."""
    ids = exchange_ids.from_redis(r)
    if ids:
        return ids
    try:
        with database.engine() as engine:
            return exchange_ids.from_database(engine)
    except Exception:
        return {}


def _load_cursor(raw: str | None) -> dict[str, float]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}


@dg.sensor(job=start_streaming, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="An exchange that should stream but has no live worker gets a start_streaming run "
                       "(which spawns a worker and sends `start`).")
def worker_health_sensor(context: SensorEvaluationContext, redis: RedisResource,
                         database: DatabaseResource) -> Iterator[dg.RunRequest | dg.SkipReason]:
    with redis.client() as r:
        ids = exchange_ids_of(r, database)
        statuses = {name: control.connection_state(r, exchange_id) for name, exchange_id in ids.items()}
        workers = control.live_workers(r)
    orphans = orphaned_exchanges(statuses, workers)
    if not orphans:
        yield dg.SkipReason(f"healthy: {len(workers)} live worker(s), no orphaned exchange")
        return
    now = time.time()
    last = _load_cursor(context.cursor)
    due = due_for_restart(orphans, last, now, RESTART_COOLDOWN_S)
    for name in orphans:
        context.log.warning("%s is %s but no live worker serves it (stale heartbeat)", name,
                            statuses[name].get("connection_state"))
    if not due:
        yield dg.SkipReason(f"restart of {', '.join(orphans)} already requested; waiting")
        return
    for name in due:
        last[name] = now
        yield dg.RunRequest(
            run_key=f"restart:{name}:{int(now)}",
            run_config={"ops": {"start_exchange_streaming": {"config": {"exchange": name}}}},
            tags={"exchange": name, "reason": "worker-health"},
        )
    context.update_cursor(json.dumps(last, sort_keys=True))


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           asset_selection=dg.AssetSelection.assets(ALERT_HISTORY),
           description="Archives alerts from the Redis stream into alert_history (cursor = last stream id) and "
                       "reports each archive as a runless materialization of alert_history.")
def alert_archive_sensor(context: SensorEvaluationContext, redis: RedisResource,
                         database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    from streaming.alerts.publish import archive_alerts

    last_id = context.cursor or None
    with redis.client() as r, database.engine() as engine:
        new_last, archived = archive_alerts(r, engine, last_id)
    cursor = new_last or last_id
    if not archived:
        if new_last and new_last != last_id:  # entries read but none new (re-read or malformed): move on
            return dg.SensorResult(cursor=new_last, skip_reason=f"no new alert; cursor at {new_last}")
        return dg.SkipReason(f"no new alert; cursor at {cursor or 'start'}")
    context.log.info("archived %d alert(s) into alert_history; cursor at %s", archived, cursor)
    return dg.SensorResult(cursor=cursor, asset_events=[dg.AssetMaterialization(
        ALERT_HISTORY, description=f"archived {archived} alert(s)",
        metadata={"archived": archived, "stream_cursor": str(cursor), "stream": keys.ALERTS_STREAM})])
