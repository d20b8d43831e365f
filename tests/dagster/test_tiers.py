"""`tier1_symbols` and `tier2_positions` against the local exchange simulator, on both databases."""

import json
import socket

import dagster as dg
import pytest
import sqlalchemy as sa

from livermore_pipelines.assets.tiers import tier1_symbols, tier2_positions
from livermore_pipelines.ranking import STABLECOINS
from streaming import keys
from streaming.db.schema import exchange_symbols, positions
from streaming.sim.testing import running_simulator
from tests.dagster.conftest import add_user
from tests.helpers.sim import sim_config

EXCHANGE_IDS = {"coinbase": 1, "binance": 2, "binance_us": 3}


@pytest.fixture(scope="module")
def sim():
    with running_simulator(sim_config(symbols=3, seed=5)) as handle:
        yield handle


@pytest.fixture
def sim_env(sim, monkeypatch):
    for name, urls in sim.urls.items():
        monkeypatch.setenv(f"LIVERMORE_{name.upper()}_REST_URL", urls.rest_url)
        monkeypatch.setenv(f"LIVERMORE_{name.upper()}_WS_URL", urls.ws_url)
    return sim


def _tier1(resources, instance, exchange, raise_on_error=True, **config):
    return dg.materialize([tier1_symbols], resources=resources, instance=instance, partition_key=exchange,
                          run_config={"ops": {"tier1_symbols": {"config": config}}} if config else None,
                          raise_on_error=raise_on_error)


def _failure(result) -> str:
    return result.get_step_failure_events()[0].step_failure_data.user_failure_data.description


@pytest.mark.parametrize("exchange", ["coinbase", "binance"])
def test_tier1_ranks_and_saves(exchange, sim_env, resources, engine, redis_client, instance):
    result = _tier1(resources, instance, exchange, top_n=10)
    meta = result.asset_materializations_for_node("tier1_symbols")[0].metadata
    ranked = [r.data for r in meta["ranked"].value.records]
    assert meta["count"].value == len(ranked) == 10
    symbols = [r["symbol"] for r in ranked]
    assert len(set(symbols)) == 10 and "| 1 |" in meta["preview"].value
    volumes = [r["volume_24h_usd"] for r in ranked]
    assert volumes == sorted(volumes, reverse=True) and volumes[-1] > 0
    ex_id = EXCHANGE_IDS[exchange]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(exchange_symbols).where(exchange_symbols.c.exchange_id == ex_id)
                            .order_by(exchange_symbols.c.rank)).mappings().all()
    assert [r["symbol"] for r in rows] == symbols and {r["tier"] for r in rows} == {1}
    assert all(r["base"] not in STABLECOINS and r["quote"] in ("USD", "USDC", "USDT") for r in rows)
    doc = json.loads(redis_client.get(keys.tier1(ex_id)))
    assert [s["symbol"] for s in doc["symbols"]] == symbols
    # a re-rank replaces: fewer symbols leave no stale tier-1 rows
    _tier1(resources, instance, exchange, top_n=3)
    with engine.connect() as conn:
        left = conn.execute(sa.select(exchange_symbols.c.symbol).where(exchange_symbols.c.exchange_id == ex_id)
                            .order_by(exchange_symbols.c.rank)).scalars().all()
    assert left == symbols[:3]


def test_tier1_coinbase_counts_usdc_aliases_once(sim_env, resources, instance):
    result = _tier1(resources, instance, "coinbase", top_n=200)
    symbols = [r.data["symbol"] for r in
               result.asset_materializations_for_node("tier1_symbols")[0].metadata["ranked"].value.records]
    assert "BTC-USD" in symbols and "BTC-USDC" not in symbols
    assert not [s for s in symbols if s.endswith("-USDC") and s[:-1] in symbols]


def test_tier1_bad_config_fails_before_any_request(sim_env, resources, instance):
    result = _tier1(resources, instance, "coinbase", raise_on_error=False, top_n=0)
    assert not result.success and "set top_n to a whole number" in _failure(result)


def test_tier1_unreachable_exchange_fails_clearly(resources, instance, monkeypatch, quick_http_retries):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("LIVERMORE_BINANCE_REST_URL", f"http://127.0.0.1:{port}")
    result = _tier1(resources, instance, "binance", raise_on_error=False)
    assert not result.success and "binance: cannot list products" in _failure(result)


def _tier2(resources, instance, exchange):
    return dg.materialize([tier2_positions], resources=resources, instance=instance, partition_key=exchange)


def test_tier2_good_missing_and_rejected_credentials(sim_env, resources, engine, instance, monkeypatch):
    key, secret = sim_env.credentials("binance")
    monkeypatch.setenv("T_GOOD_KEY", key)
    monkeypatch.setenv("T_GOOD_SECRET", secret)
    monkeypatch.setenv("T_BAD_KEY", key)
    monkeypatch.setenv("T_BAD_SECRET", "not-the-secret")
    monkeypatch.delenv("T_MISSING_KEY", raising=False)
    add_user(engine, 1, 2, "T_GOOD_KEY", "T_GOOD_SECRET")
    add_user(engine, 2, 2, "T_MISSING_KEY", "T_GOOD_SECRET")
    add_user(engine, 3, 2, "T_BAD_KEY", "T_BAD_SECRET")
    with engine.begin() as conn:  # user 3 had positions: a refused key must not wipe them
        conn.execute(positions.insert().values(user_id=3, exchange_id=2, symbol="OLDUSDT", asset="OLD",
                                               quantity=1.0, value_usd=50.0, synced_at=sa.func.now()))
    result = _tier2(resources, instance, "binance")
    meta = {k: v.value for k, v in result.asset_materializations_for_node("tier2_positions")[0].metadata.items()}
    assert meta["users_synced"] == 1 and meta["users_skipped"] == 2
    assert "T_MISSING_KEY not set" in meta["skipped"]["2"]
    assert "rejected" in meta["skipped"]["3"]
    shown = json.dumps({k: v for k, v in meta.items() if k != "holdings"})
    assert secret not in shown and "not-the-secret" not in shown
    with engine.connect() as conn:
        rows = conn.execute(sa.select(positions).order_by(positions.c.user_id, positions.c.symbol)).mappings().all()
    mine = [r for r in rows if r["user_id"] == 1]
    assets = {r["asset"] for r in mine}
    assert assets and not assets & (STABLECOINS | {"USD", "BNB"})  # USDT 1000 is a stablecoin, BNB is zero
    assert all(r["value_usd"] >= 2.0 and r["symbol"].startswith(r["asset"]) for r in mine)
    assert [(r["user_id"], r["symbol"]) for r in rows if r["user_id"] != 1] == [(3, "OLDUSDT")]


def test_tier2_coinbase_jwt_credentials(sim_env, resources, engine, instance, monkeypatch):
    key_name, pem = sim_env.credentials("coinbase")
    monkeypatch.setenv("CB_KEY", key_name)
    monkeypatch.setenv("CB_SECRET", pem)
    add_user(engine, 5, 1, "CB_KEY", "CB_SECRET")
    result = _tier2(resources, instance, "coinbase")
    meta = result.asset_materializations_for_node("tier2_positions")[0].metadata
    assert meta["users_synced"].value == 1 and meta["users_skipped"].value == 0
    with engine.connect() as conn:
        rows = conn.execute(sa.select(positions.c.symbol, positions.c.value_usd)
                            .where(positions.c.user_id == 5)).all()
    assert rows and all(v >= 2.0 and s.endswith(("-USD", "-USDC", "-USDT")) for s, v in rows)


def test_tier2_without_accounts_is_empty_and_makes_no_request(sim_env, resources, instance):
    meta = _tier2(resources, instance, "binance_us").asset_materializations_for_node("tier2_positions")[0].metadata
    assert meta["users_synced"].value == 0 and meta["positions"].value == 0
