"""The code location loads, and the streaming jobs fail with advice when they cannot work."""

import importlib
from datetime import UTC, datetime

import dagster as dg
import pytest

from livermore_pipelines.jobs import start_streaming, stop_streaming
from streaming import keys


@pytest.fixture
def defs(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVERMORE_HOME", str(tmp_path))
    monkeypatch.delenv("LIVERMORE_DEPLOYMENT", raising=False)
    import livermore_pipelines.definitions as module

    return importlib.reload(module).defs()


def test_definitions_load(defs):
    for job in ("start_streaming", "stop_streaming", "refresh_symbols", "audit_candles"):
        assert defs.resolve_job_def(job).name == job
    for sensor in ("worker_health_sensor", "live_candles_sensor", "alert_archive_sensor"):
        assert defs.resolve_sensor_def(sensor).default_status == dg.DefaultSensorStatus.RUNNING
    schedule = defs.resolve_schedule_def("refresh_symbols_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    keys_ = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys_ == {"exchanges", "tier1_symbols", "tier2_positions", "symbol_universe", "live_candles",
                     "alert_history", "alert_destinations", "candle_audit"}
    checks = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {("symbol_universe", "not_empty"), ("symbol_universe", "no_duplicates"),
                      ("symbol_universe", "within_stream_limits"), ("candle_audit", "candles_match_exchange")} | {
        ("live_candles", f"{exchange}_{check}") for exchange in ("coinbase", "binance", "binance_us")
        for check in ("streams_live", "worker_alive", "fresh")}


def test_live_sensor_interval_is_the_setting(monkeypatch, tmp_path):
    import livermore_pipelines.definitions as module

    monkeypatch.setenv("LIVERMORE_HOME", str(tmp_path))
    monkeypatch.delenv("LIVERMORE_LIVE_SENSOR_S", raising=False)
    assert module.defs().resolve_sensor_def("live_candles_sensor").minimum_interval_seconds == 15
    monkeypatch.setenv("LIVERMORE_LIVE_SENSOR_S", "7")
    sensor = module.defs().resolve_sensor_def("live_candles_sensor")
    assert sensor.minimum_interval_seconds == 7 and "at least 7 s apart" in (sensor.description or "")


def test_graph_reads_exchanges_tiers_universe_live_candles_alerts(defs):
    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}

    assert parents("tier1_symbols") == {"exchanges"} and parents("tier2_positions") == {"exchanges"}
    assert parents("symbol_universe") == {"tier1_symbols", "tier2_positions"}
    assert parents("live_candles") == {"symbol_universe"} and parents("alert_history") == {"live_candles"}
    assert not graph.get(dg.AssetKey("live_candles")).is_materializable  # the worker writes them, not a run
    assert graph.get(dg.AssetKey("live_candles")).partitions_def is not None


def test_schedule_requests_one_run_per_active_exchange(defs, resources, engine, instance):
    from streaming.db.schema import exchanges

    with engine.begin() as conn:
        conn.execute(exchanges.update().where(exchanges.c.name == "binance").values(is_active=False))
    schedule = defs.resolve_schedule_def("refresh_symbols_schedule")
    at = datetime(2026, 8, 9, 22, 0, tzinfo=UTC)
    ctx = dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=at,
                                   repository_def=defs.get_repository_def())
    requests = list(schedule.evaluate_tick(ctx).run_requests or [])
    assert sorted(r.partition_key for r in requests) == ["binance_us", "coinbase"]
    assert {r.run_key for r in requests} == {f"{n}:2026-08-09T22:00:00+00:00" for n in ("coinbase", "binance_us")}


def _run(job, resources, instance, **config):
    op = "start_exchange_streaming" if job is start_streaming else "stop_exchange_streaming"
    return job.execute_in_process(run_config={"ops": {op: {"config": config}}}, resources=resources,
                                  instance=instance, raise_on_error=False)


def _failure(result) -> str:
    return result.get_step_failure_events()[0].step_failure_data.user_failure_data.description


def test_start_without_universe_says_to_materialize_it(resources, instance):
    result = _run(start_streaming, resources, instance, exchange="coinbase")
    assert not result.success
    assert "materialize the symbol_universe asset for partition 'coinbase'" in _failure(result)


def test_start_unknown_exchange(resources, instance):
    result = _run(start_streaming, resources, instance, exchange="kraken")
    assert not result.success and "unknown exchange 'kraken'" in _failure(result)


def test_stop_without_worker_is_a_no_op(resources, instance, redis_client):
    result = _run(stop_streaming, resources, instance, exchange="coinbase")
    assert result.success
    assert result.output_for_node("stop_exchange_streaming") == "no worker"
    assert redis_client.xlen(keys.COMMANDS_STREAM) == 0


def test_production_start_does_not_spawn_and_says_to_run_the_service(resources, instance, redis_client):
    from livermore_pipelines.resources import DeploymentResource

    redis_client.set(keys.universe(1), '{"symbols": [{"symbol": "BTC-USD", "tier": 1, "pool": "shared"}]}')
    production = {**resources, "deployment": DeploymentResource(name="production")}
    result = _run(start_streaming, production, instance, exchange="coinbase", timeout_s=1.0)
    assert not result.success and "start the worker service" in _failure(result)
    assert redis_client.xlen(keys.COMMANDS_STREAM) == 0  # nothing sent to nobody
    explicit = _run(start_streaming, resources, instance, exchange="coinbase", spawn_worker=False)
    assert not explicit.success and "no live streaming worker" in _failure(explicit)
