"""live_candles_sensor with real Redis, and Livermore's database and the Dagster instance storage both on
SQLite and on PostgreSQL: healthy, some streams stale, worker dead, stopped.

The workers' side is written here by hand with the shared contracts (ExchangeStats, heartbeats,
the status hash), as a worker writes it. The sensor's events are recorded the way the daemon
records a SensorResult (runless), then read back from the instance.
"""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import msgspec

from livermore_pipelines.assets.live import LIVE_CANDLES, live_candles, live_candles_checks
from livermore_pipelines.live_health import FRESH_WINDOW
from livermore_pipelines.live_sensor import CHECKS_EVERY, Cursor, live_candles_sensor
from streaming import keys
from streaming.contracts.stats import ExchangeStats
from streaming.control.heartbeat import heartbeat_record

SINCE = "2026-08-09T20:00:00+00:00"


def by_name(r) -> None:
    r.hset(keys.EXCHANGES_BY_NAME, mapping={"coinbase": 1, "binance": 2, "binance_us": 3})


def beat(r, worker: str, exchanges: dict[str, str]) -> None:
    r.hset(keys.WORKERS, worker, json.dumps(heartbeat_record(worker, SINCE, exchanges, None, None)))


def write_stats(r, exchange_id: int, worker: str, **fields) -> None:
    s = ExchangeStats(worker_id=worker, since=fields.pop("since", SINCE), written_at=datetime.now(UTC).isoformat(),
                      **fields)
    r.hset(keys.exchange_stats(exchange_id), worker, msgspec.json.encode(s))


def status(r, exchange_id: int, state: str) -> None:
    r.hset(keys.exchange_status(exchange_id), mapping={"connection_state": state})


def tick(instance, resources, cursor=None):
    """One evaluation; its events recorded as the sensor daemon records them."""
    ctx = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
    result = live_candles_sensor(ctx)
    if isinstance(result, dg.SensorResult):
        for event in result.asset_events:
            instance.report_runless_asset_event(event)
    return result


def latest_observation(instance, partition: str) -> dict:
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=LIVE_CANDLES, asset_partitions=[partition]), limit=1).records
    assert records, f"no observation of {partition}"
    return {k: v.value for k, v in records[0].asset_observation.metadata.items()}


def latest_checks(instance, exchange: str) -> dict[str, tuple[bool, str]]:
    out = {}
    for name in ("streams_live", "worker_alive", "fresh"):
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(LIVE_CANDLES, f"{exchange}_{name}"), limit=1)
        if history and history[0].event is not None:
            evaluation = history[0].event.asset_check_evaluation
            out[name] = (evaluation.passed, evaluation.severity.value)
    return out


def materializations(instance, partition: str) -> list:
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=LIVE_CANDLES, asset_partitions=[partition]), limit=10).records


def test_healthy_exchange_observed_with_interval_figures(resources, redis_client, stored_instance):
    instance = stored_instance
    r = redis_client
    by_name(r)
    status(r, 1, "connected")
    beat(r, "w1", {"coinbase": "connected"})
    write_stats(r, 1, "w1", streams=15, closes={"5m": 30, "15m": 9}, close_lag_ms_p50=45.0, close_lag_ms_p99=120.0,
                rest_requests=40, rest_429=1, reconnects=2, frames=900, malformed_frames=3, skipped_frames=4,
                corrections=1)
    first = tick(instance, resources)
    assert isinstance(first, dg.SensorResult)
    obs = latest_observation(instance, "coinbase")
    assert obs["state"] == "live" and obs["streams_live"] == 15 and obs["streams_stale"] == 0
    assert obs["closes_5m"] == 30 and obs["close_lag_ms_p99"] == 120.0 and obs["rest_429"] == 1
    # the next tick reports only what happened since the first
    write_stats(r, 1, "w1", streams=15, closes={"5m": 33, "15m": 9}, close_lag_ms_p50=45.0, close_lag_ms_p99=110.0,
                rest_requests=41, rest_429=1, reconnects=2, frames=950, malformed_frames=3, skipped_frames=6,
                corrections=1)
    second = tick(instance, resources, cursor=first.cursor)
    obs = latest_observation(instance, "coinbase")
    assert (obs["closes_5m"], obs["closes_15m"], obs["rest_requests"], obs["rest_429"]) == (3, 0, 1, 0)
    assert (obs["frames"], obs["skipped_frames"], obs["reconnects"], obs["corrections"]) == (50, 2, 0, 0)
    assert latest_checks(instance, "coinbase") == {"streams_live": (True, "WARN"), "worker_alive": (True, "ERROR"),
                                                   "fresh": (True, "WARN")}
    # new closes are a (runless) materialization of the partition: what Dagster's freshness counts
    assert len(materializations(instance, "coinbase")) == 2
    assert materializations(instance, "binance") == []  # not streamed, not observed
    # a tick without new closes observes but does not materialize
    third = tick(instance, resources, cursor=second.cursor)
    assert latest_observation(instance, "coinbase")["closes_5m"] == 0
    assert len(materializations(instance, "coinbase")) == 2
    assert Cursor(third.cursor).last_close["coinbase"] == Cursor(second.cursor).last_close["coinbase"]


def test_some_streams_stale_warn(resources, redis_client, stored_instance):
    instance = stored_instance
    r = redis_client
    by_name(r)
    status(r, 2, "connected")
    beat(r, "w1", {"binance": "connected"})
    # the sensor's first tick: the worker's totals date its closes from its start, a minute ago
    write_stats(r, 2, "w1", streams=10, stale=["BTCUSDT:5m", "ETHUSDT:5m"], closes={"5m": 8},
                since=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    tick(instance, resources)
    obs = latest_observation(instance, "binance")
    assert obs["state"] == "degraded" and obs["streams_stale"] == 2 and obs["stale"] == "BTCUSDT:5m, ETHUSDT:5m"
    assert latest_checks(instance, "binance") == {"streams_live": (False, "WARN"), "worker_alive": (True, "ERROR"),
                                                  "fresh": (True, "WARN")}


def test_worker_dead_is_an_error_and_stale(resources, redis_client, stored_instance):
    instance = stored_instance
    r = redis_client
    by_name(r)
    status(r, 1, "connected")  # a worker killed hard leaves its last state and stats behind
    write_stats(r, 1, "gone", streams=15, closes={"5m": 30})
    old_close = (datetime.now(UTC) - FRESH_WINDOW - timedelta(minutes=1)).isoformat()
    cursor = json.dumps({"readings": {}, "last_close": {"coinbase": old_close}})
    result = tick(instance, resources, cursor=cursor)
    assert isinstance(result, dg.SensorResult)
    obs = latest_observation(instance, "coinbase")
    assert obs["state"] == "down" and obs["workers"] == 0 and obs["streams"] == 0
    assert latest_checks(instance, "coinbase") == {"streams_live": (True, "WARN"), "worker_alive": (False, "ERROR"),
                                                   "fresh": (False, "WARN")}
    assert materializations(instance, "coinbase") == []


def test_a_stopped_exchange_is_reported_once_then_skipped(resources, redis_client, stored_instance):
    instance = stored_instance
    r = redis_client
    by_name(r)
    status(r, 1, "connected")
    tick_down = tick(instance, resources)  # should run, no worker: the error
    assert latest_checks(instance, "coinbase")["worker_alive"] == (False, "ERROR")
    status(r, 1, "disconnected")  # `stop` was sent
    stopped = tick(instance, resources, cursor=tick_down.cursor)
    assert latest_checks(instance, "coinbase") == {"streams_live": (True, "WARN"), "worker_alive": (True, "ERROR"),
                                                   "fresh": (True, "WARN")}
    assert not [e for e in stopped.asset_events if isinstance(e, dg.AssetObservation)]
    quiet = tick(instance, resources, cursor=stopped.cursor)
    assert quiet.asset_events == [] and "nothing streams" in quiet.skip_reason.skip_message
    # started again: the checks pass as when stopped, but say so at once, not five minutes later
    status(r, 1, "connected")
    beat(r, "w1", {"coinbase": "connected"})
    write_stats(r, 1, "w1", streams=10, closes={"5m": 3}, since=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    live = tick(instance, resources, cursor=quiet.cursor)
    said = {e.check_name: e.description for e in live.asset_events if isinstance(e, dg.AssetCheckEvaluation)}
    assert said["coinbase_worker_alive"] == "streamed by w1" and "stopped" not in said["coinbase_streams_live"]


def test_checks_run_on_demand(resources, redis_client, stored_instance):
    instance = stored_instance
    r = redis_client
    by_name(r)
    status(r, 3, "connecting")
    beat(r, "w1", {"binance_us": "connecting"})
    write_stats(r, 3, "w1", streams=5)
    status(r, 1, "connected")  # no worker streams coinbase
    result = dg.materialize([live_candles, live_candles_checks], selection=dg.AssetSelection.checks_for_assets(
        LIVE_CANDLES), resources=resources, instance=instance, raise_on_error=False)
    outcome = {e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()}
    assert len(outcome) == 9
    assert outcome["binance_us_worker_alive"] == (True, "ERROR") and outcome["binance_us_fresh"] == (False, "WARN")
    assert outcome["coinbase_worker_alive"] == (False, "ERROR") and outcome["binance_worker_alive"] == (True, "ERROR")


def test_checks_are_reported_on_change_and_every_five_minutes(resources, redis_client, instance):
    r = redis_client
    by_name(r)
    status(r, 2, "connected")
    beat(r, "w1", {"binance": "connected"})
    write_stats(r, 2, "w1", streams=10, closes={"5m": 8})

    def check_events(result):  # of binance (the stopped exchanges are reported once, on the first tick)
        return [e for e in result.asset_events
                if isinstance(e, dg.AssetCheckEvaluation)
                and e.check_name in ("binance_streams_live", "binance_worker_alive", "binance_fresh")]

    first = tick(instance, resources)
    assert len(check_events(first)) == 3
    same = tick(instance, resources, cursor=first.cursor)
    assert check_events(same) == [] and [e for e in same.asset_events if isinstance(e, dg.AssetObservation)]
    write_stats(r, 2, "w1", streams=10, stale=["BTCUSDT:5m"], closes={"5m": 9})
    changed = tick(instance, resources, cursor=same.cursor)
    assert {e.check_name: e.passed for e in check_events(changed)}["binance_streams_live"] is False
    # an unchanged outcome is said again once its last report is five minutes old
    data = json.loads(changed.cursor)
    outcome = data["checks"]["binance"].split("@")[0]
    data["checks"]["binance"] = f"{outcome}@{(datetime.now(UTC) - CHECKS_EVERY).isoformat()}"
    again = tick(instance, resources, cursor=json.dumps(data))
    assert len(check_events(again)) == 3
