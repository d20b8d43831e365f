"""live_candles_sensor: observes each exchange's live candles from the workers' stats in Redis.

Every tick (15 s, LIVERMORE_LIVE_SENSOR_S) it reads, per exchange, the stats the live workers
write (HASH `exchange:{id}:stats`), the merged status and the heartbeats, and reports as runless events: an
observation (what happened since the last tick), a materialization when new closes arrived
(Dagster's freshness counts materializations) and the three live checks when their outcome
changed or five minutes after their last report. The cursor keeps each worker's last counters,
when each exchange last saw a close, its state and its checks' last report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import dagster as dg
import msgspec
import redis as redis_lib
from dagster import SensorEvaluationContext

from livermore_pipelines import control
from livermore_pipelines.assets.live import LIVE_CANDLES, check_evaluations
from livermore_pipelines.live_health import RUNNING_STATES, STOPPED, LiveHealth, Reading, assess, checks
from livermore_pipelines.partitions import EXCHANGE_NAMES
from livermore_pipelines.resources import DatabaseResource, RedisResource
from livermore_pipelines.sensors import exchange_ids_of
from streaming import exchange_ids, keys
from streaming.contracts.stats import stats_from_hash
from streaming.contracts.workers import status_from_hash
from streaming.settings import LivermoreSettings
from streaming.timestamps import parse_utc_iso

LiveEvent = dg.AssetObservation | dg.AssetMaterialization | dg.AssetCheckEvaluation
# LIVERMORE_LIVE_SENSOR_S's default, for the module-level sensor tests and tools import
DEFAULT_INTERVAL_S: int = next(f.default for f in msgspec.structs.fields(LivermoreSettings)
                               if f.name == "live_sensor_s")
# an unchanged check outcome is said again this often: the UI shows the checks are still being run
CHECKS_EVERY = timedelta(minutes=5)


class Cursor:
    """The sensor's memory: each worker's last reading, when each exchange last saw a close, its last state."""

    def __init__(self, raw: str | None) -> None:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        self.readings: dict[str, dict[str, Reading]] = {}
        for exchange, workers in (data.get("readings") or {}).items():
            if isinstance(workers, Mapping):
                self.readings[str(exchange)] = {str(w): r for w, raw_r in workers.items()
                                                if (r := Reading.from_json(raw_r)) is not None}
        self.last_close = _strings(data.get("last_close"))
        self.state = _strings(data.get("state"))
        # exchange -> "outcome@when": the live checks' last reported outcome and the time of that report
        self.checks = _strings(data.get("checks"))

    def checks_due(self, exchange: str, outcome: str, now: datetime) -> bool:
        """Report the checks when their outcome changed, else once every CHECKS_EVERY."""
        last_outcome, _, at = self.checks.get(exchange, "").partition("@")
        when = parse_utc_iso(at)
        if last_outcome == outcome and when is not None and now - when < CHECKS_EVERY:
            return False
        self.checks[exchange] = f"{outcome}@{now.isoformat()}"
        return True

    def dump(self) -> str:
        return json.dumps({"readings": {ex: {w: r.to_json() for w, r in ws.items()}
                                        for ex, ws in self.readings.items()},
                           "last_close": self.last_close, "state": self.state, "checks": self.checks},
                          sort_keys=True)


def _strings(value: Any) -> dict[str, str]:
    return {str(k): v for k, v in value.items() if isinstance(v, str)} if isinstance(value, Mapping) else {}


def _serving(workers: list[dict[str, Any]], exchange: str) -> list[str]:
    """Live workers whose heartbeat lists the exchange as connected or connecting."""
    return sorted(str(w["worker_id"]) for w in workers
                  if (w.get("exchanges") or {}).get(exchange) in RUNNING_STATES)


def exchange_health(r: redis_lib.Redis, exchange: str, previous: Mapping[str, Reading], last_close_at: str | None,
                    now: datetime, workers: list[dict[str, Any]] | None = None,
                    ids: Mapping[str, int] | None = None) -> LiveHealth | None:
    """The health of one exchange now; None when Redis does not know its id."""
    ids = exchange_ids.from_redis(r) if ids is None else ids
    if exchange not in ids:
        return None
    exchange_id = ids[exchange]
    workers = control.live_workers(r) if workers is None else workers
    status = status_from_hash(cast("dict[Any, Any]", r.hgetall(keys.exchange_status(exchange_id))))
    stats = stats_from_hash(cast("dict[Any, Any]", r.hgetall(keys.exchange_stats(exchange_id))))
    return assess(exchange, status.connection_state, _serving(workers, exchange), stats, previous, last_close_at, now)


def last_materialized_at(instance: dg.DagsterInstance, exchange: str) -> str | None:
    """When the partition was last materialized (new closes): the `fresh` check of an on-demand run."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=LIVE_CANDLES, asset_partitions=[exchange]), limit=1).records
    if not records:
        return None
    return datetime.fromtimestamp(records[0].timestamp, UTC).isoformat()


def outcome_of(health: LiveHealth) -> str:
    """The exchange's state and its checks' pass/fail as one word, e.g. `live:PFP`: what decides
    whether the checks are reported again. The state is in it because stopped -> live passes the
    same checks while what they say ("stopped" / "streamed by w1") changed."""
    return f"{health.state}:" + "".join("P" if o.passed else "F" for o in checks(health))


def live_events(health: LiveHealth, with_checks: bool = True) -> list[LiveEvent]:
    events: list[LiveEvent] = [
        dg.AssetObservation(LIVE_CANDLES, partition=health.exchange, metadata=health.metadata())]
    if health.new_closes:
        events.append(dg.AssetMaterialization(
            LIVE_CANDLES, partition=health.exchange, description=f"{health.new_closes} new closed candles",
            metadata={"closes": health.new_closes, **{f"closes_{tf}": n for tf, n in sorted(health.closes.items())},
                      "streams": health.streams, "streams_stale": len(health.stale)}))
    if with_checks:
        events += check_evaluations(health)
    return events


def observe_live_candles(context: SensorEvaluationContext, redis: RedisResource,
                         database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    """One tick of live_candles_sensor."""
    cursor = Cursor(context.cursor)
    now = datetime.now(UTC)
    events: list[LiveEvent] = []
    summary: list[str] = []
    with redis.client() as r:
        ids = {n: i for n, i in exchange_ids_of(r, database).items() if n in EXCHANGE_NAMES}
        workers = control.live_workers(r)
        for name in sorted(ids):
            health = exchange_health(r, name, cursor.readings.get(name, {}), cursor.last_close.get(name), now,
                                     workers, ids)
            if health is None:
                continue
            was = cursor.state.get(name)
            cursor.state[name] = health.state
            cursor.readings[name] = health.readings
            if health.last_close_at:
                cursor.last_close[name] = health.last_close_at
            due = cursor.checks_due(name, outcome_of(health), now)
            if health.state == STOPPED:
                if was != STOPPED:  # once, so the checks say "stopped" instead of their last failure
                    events += check_evaluations(health)
                continue
            events += live_events(health, with_checks=due)
            summary.append(f"{name} {health.state} ({health.streams} streams, {len(health.stale)} stale, "
                           f"{health.new_closes} closes)")
    if summary:
        context.log.info("live candles: %s", "; ".join(summary))
    if not events:
        return dg.SensorResult(cursor=cursor.dump(), skip_reason=(
            f"nothing streams: {len(workers)} live worker(s), no exchange should run"))
    return dg.SensorResult(asset_events=events, cursor=cursor.dump())


def build_live_candles_sensor(interval_s: int = DEFAULT_INTERVAL_S) -> dg.SensorDefinition:
    """live_candles_sensor, ticking at least `interval_s` seconds apart (LIVERMORE_LIVE_SENSOR_S)."""
    return dg.sensor(
        name="live_candles_sensor", minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING, asset_selection=dg.AssetSelection.assets(LIVE_CANDLES),
        description=f"Observes live_candles per exchange, ticks at least {interval_s} s apart, from the workers' "
                    "stats: streams live/stale, closes per timeframe, close lag, REST requests and 429s, "
                    "reconnects, malformed/skipped frames, corrections; reports the live checks and a "
                    "materialization when new closes arrived.")(observe_live_candles)


live_candles_sensor = build_live_candles_sensor()
