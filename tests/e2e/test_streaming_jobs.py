"""start_streaming / reload-symbols / stop_streaming with a real worker subprocess (spawned by the op)."""

import json

import dagster as dg
import pytest

from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.jobs import start_streaming, stop_streaming
from streaming import keys
from streaming.control import spawn
from streaming.control.heartbeat import live_workers
from tests.e2e.platform import publish_universe, sim_platform
from tests.servers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def platform(sqlite_url, redis_url, tmp_path, monkeypatch):
    with sim_platform(sqlite_url, redis_url, tmp_path / "home", monkeypatch, symbols=3, speed=60) as (_, resources,
                                                                                                     instance):
        yield resources, instance


def _config(op: str, **config) -> dict:
    return {"ops": {op: {"config": config}}}


def test_start_reload_stop(platform, redis_client):
    resources, instance = platform
    publish_universe("coinbase", resources, instance)
    universe = json.loads(redis_client.get(keys.universe(1)))
    assert sorted(s["symbol"] for s in universe["symbols"]) == ["SIM1-USD", "SIM2-USD", "SIM3-USD"]

    started = start_streaming.execute_in_process(
        run_config=_config("start_exchange_streaming", exchange="coinbase", timeout_s=90.0),
        resources=resources, instance=instance)
    assert started.success
    meta = next(e for e in started.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert meta["outcome"].value == "connected" and meta["symbols"].value == 3
    assert meta["worker"].value["spawned"] is True
    # 3 symbols x 5 timeframes warmed up, nothing refused; the run log follows the warm-up in tenths
    warm_up = meta["warm_up"].value
    assert warm_up["streams"] == 15 and warm_up["candles"] > 0 and warm_up["seconds"] >= 0
    assert meta["refused"].value == {}
    logged = [e.user_message for e in instance.all_logs(started.run_id) if "coinbase warm-up " in e.user_message]
    assert logged and all("%" in line for line in logged) and len(logged) <= 11
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "connected"

    # a new universe reaches the running worker without a reconnect
    again = dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="coinbase")
    assert again.asset_materializations_for_node("symbol_universe")[0].metadata["reload_symbols"].value == "sent"

    # a second start finds the worker alive and does not spawn another one
    second = start_streaming.execute_in_process(
        run_config=_config("start_exchange_streaming", exchange="coinbase", timeout_s=60.0),
        resources=resources, instance=instance)
    meta2 = next(e for e in second.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert second.success and meta2["worker"].value["spawned"] is False

    stopped = stop_streaming.execute_in_process(run_config=_config("stop_exchange_streaming", exchange="coinbase"),
                                                resources=resources, instance=instance)
    assert stopped.success and stopped.output_for_node("stop_exchange_streaming") == "stopped"
    wait_for(lambda: redis_client.hget(keys.exchange_status(1), "connection_state") != "connected", timeout=20,
             message="coinbase to leave connected after stop")


def test_worker_killed_is_restarted_via_health_sensor(platform, redis_client):
    from livermore_pipelines.sensors import worker_health_sensor

    resources, instance = platform
    publish_universe("coinbase", resources, instance)
    first = start_streaming.execute_in_process(
        run_config=_config("start_exchange_streaming", exchange="coinbase", timeout_s=90.0),
        resources=resources, instance=instance)
    assert first.success
    victim = spawn.spawned_workers()[-1]
    victim.kill()  # SIGKILL: no goodbye, the status hash still says connected
    victim.wait(timeout=10)
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "connected"
    wait_for(lambda: not live_workers(redis_client), timeout=40, interval=0.5, message="heartbeat to go stale")

    requests = list(worker_health_sensor(dg.build_sensor_context(instance=instance, resources=resources)))
    assert len(requests) == 1 and isinstance(requests[0], dg.RunRequest)
    restarted = start_streaming.execute_in_process(run_config=requests[0].run_config, resources=resources,
                                                   instance=instance)
    assert restarted.success
    meta = next(e for e in restarted.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert meta["worker"].value["spawned"] is True and meta["worker"].value["pid"] != victim.pid
    healthy = list(worker_health_sensor(dg.build_sensor_context(instance=instance, resources=resources)))
    assert isinstance(healthy[0], dg.SkipReason) and "healthy" in healthy[0].skip_message
