"""`candle_audit` over what a real worker stored from the simulator: warm-up, live 5m closes and
(Coinbase) the 15m..1d bars aggregated from them, all compared with the exchange's REST candles."""

import dagster as dg
import pytest

from livermore_pipelines.assets.audit import CHECK, candle_audit
from livermore_pipelines.assets.exchanges import exchanges
from livermore_pipelines.assets.tiers import tier1_symbols, tier2_positions
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.jobs import start_streaming, stop_streaming
from livermore_pipelines.resources import DatabaseResource, ExchangeClientsResource, RedisResource
from streaming import keys
from streaming.control import spawn
from streaming.sim.testing import running_simulator
from tests.helpers.sim import sim_clock_env, sim_config
from tests.servers import wait_for

pytestmark = pytest.mark.slow

SPEED = 60  # a 5m bar closes every 5 s, a 15m bar every 15 s


@pytest.fixture
def platform(sqlite_url, redis_url, tmp_path, monkeypatch):
    with running_simulator(sim_config(symbols=2, seed=3, speed=SPEED, include_recorded_products=False)) as sim:
        for name, urls in sim.urls.items():
            monkeypatch.setenv(f"LIVERMORE_{name.upper()}_REST_URL", urls.rest_url)
            monkeypatch.setenv(f"LIVERMORE_{name.upper()}_WS_URL", urls.ws_url)
        for name, value in sim_clock_env(sim).items():
            monkeypatch.setenv(name, value)
        resources = {"database": DatabaseResource(url=sqlite_url),
                     "redis": RedisResource(url=redis_url, home=str(tmp_path / "home")),
                     "exchange_clients": ExchangeClientsResource()}
        with dg.DagsterInstance.ephemeral() as instance:
            try:
                yield sim, resources, instance
            finally:
                spawn.stop_spawned_workers()


@pytest.mark.parametrize(("exchange", "exchange_id"), [("coinbase", 1), ("binance", 2)])
def test_audit_of_a_streamed_store_passes(exchange, exchange_id, platform, redis_client):
    sim, resources, instance = platform
    assert dg.materialize([exchanges], resources=resources, instance=instance).success
    for asset in (tier1_symbols, tier2_positions, symbol_universe):
        assert dg.materialize([asset], resources=resources, instance=instance, partition_key=exchange).success
    started = start_streaming.execute_in_process(
        run_config={"ops": {"start_exchange_streaming": {"config": {"exchange": exchange, "timeout_s": 120.0}}}},
        resources=resources, instance=instance)
    assert started.success
    symbol = sim.symbols(exchange)[0]
    marker = keys.closed_marker(exchange_id, symbol, "15m")
    first = int(redis_client.get(marker))
    # two live 15m closes (built from live 5m closes on Coinbase)
    wait_for(lambda: int(redis_client.get(marker)) >= first + 2 * 900_000, timeout=90, interval=0.5,
             message="two live 15m closes")
    # stopped or not makes no difference to the audit (it compares through the newest stored
    # bar); stopped, the test leaves no worker writing behind it
    stop_streaming.execute_in_process(
        run_config={"ops": {"stop_exchange_streaming": {"config": {"exchange": exchange}}}},
        resources=resources, instance=instance)

    result = dg.materialize([candle_audit], resources=resources, instance=instance, partition_key=exchange,
                            run_config={"ops": {"candle_audit": {"config": {"bars": 300, "symbols_per_run": 10}}}})
    [check] = result.get_asset_check_evaluations()
    meta = {k: v.value for k, v in check.metadata.items()}
    rows = [r.data for r in meta["differing_bars"].records] if "differing_bars" in meta else []
    assert check.check_name == CHECK and check.passed, (check.description, rows[:10])
    assert meta["streams_audited"] == 2 * 5 and meta["bars_compared"] >= 2 * 5 * 250
