"""`exchanges` and `symbol_universe` assets on SQLite and PostgreSQL, with real Redis."""

import json

import dagster as dg
import sqlalchemy as sa

from livermore_pipelines.assets.exchanges import exchanges
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.ranking import RankedSymbol
from livermore_pipelines.store import replace_positions, replace_tier1
from livermore_pipelines.valuation import Holding
from streaming import keys
from streaming.db.schema import exchange_symbols
from streaming.db.schema import exchanges as exchanges_table
from tests.dagster.conftest import add_user, now


def ranked(*symbols: str) -> list[RankedSymbol]:
    return [RankedSymbol(rank=i + 1, symbol=s, base=s.split("-")[0], quote="USD", price=1.0,
                         volume_24h_quote=100.0 - i, volume_24h_usd=100.0 - i) for i, s in enumerate(symbols)]


def holding(asset: str, symbol: str, qty: float = 1.0, price: float = 10.0) -> Holding:
    return Holding(asset=asset, symbol=symbol, quantity=qty, price=price, value_usd=qty * price)


def test_exchanges_asset_refuses_a_schema_behind_and_syncs_redis(database_url, redis_client, redis_url, tmp_path,
                                                                  instance):
    from livermore_pipelines.resources import DatabaseResource, RedisResource
    from streaming.db.migrate import upgrade

    res = {"database": DatabaseResource(url=database_url), "redis": RedisResource(url=redis_url, home=str(tmp_path))}
    # an empty database: migrations are `livermore db upgrade`'s job, the asset says so and changes nothing
    behind = dg.materialize([exchanges], resources=res, instance=instance, raise_on_error=False)
    assert not behind.success
    failure = behind.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "livermore db upgrade" in failure.description and "none (empty database)" in failure.description
    assert redis_client.hgetall(keys.EXCHANGES_BY_NAME) == {}
    assert sa.inspect(sa.create_engine(database_url)).get_table_names() == []
    upgrade(database_url)
    result = dg.materialize([exchanges], resources=res, instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("exchanges")[0].metadata
    assert meta["count"].value == 3 and meta["schema_revision"].value
    assert [r.data["name"] for r in meta["exchanges"].value.records] == ["coinbase", "binance", "binance_us"]
    assert redis_client.hgetall(keys.EXCHANGES_BY_NAME) == {"coinbase": "1", "binance": "2", "binance_us": "3"}
    doc = json.loads(redis_client.get(keys.exchange_meta(2)))
    assert doc["name"] == "binance" and doc["api_limits"]["ws_streams_per_connection"] == 1024
    # idempotent: a second run leaves the same keys
    again = dg.materialize([exchanges], resources=res, instance=instance)
    assert again.asset_materializations_for_node("exchanges")[0].metadata["count"].value == 3
    assert json.loads(redis_client.get(keys.exchange_meta(2))) == doc


def _universe(result: dg.ExecuteInProcessResult) -> tuple[dict, dict[str, bool]]:
    meta = result.asset_materializations_for_node("symbol_universe")[0].metadata
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return {k: v.value for k, v in meta.items()}, checks


def test_universe_merges_tiers_into_pools(resources, engine, redis_client, instance):
    with engine.begin() as conn:
        replace_tier1(conn, 1, ranked("BTC-USD", "ETH-USD"), now())
    add_user(engine, 7, 1, "K7", "S7")
    add_user(engine, 9, 1, "K9", "S9")
    add_user(engine, 11, 1, "K11", "S11", active=False)
    with engine.begin() as conn:
        replace_positions(conn, 7, 1, [holding("ETH", "ETH-USD"), holding("FOO", "FOO-USD", 2.0, 3.0)], now())
        replace_positions(conn, 9, 1, [holding("FOO", "FOO-USD")], now())
        replace_positions(conn, 11, 1, [holding("GONE", "GONE-USD")], now())  # inactive account: ignored
    result = dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="coinbase")
    meta, checks = _universe(result)
    assert checks == {"not_empty": True, "no_duplicates": True, "within_stream_limits": True}
    assert meta["published"] is True and meta["count"] == 3 and meta["user_pool"] == 1
    assert meta["reload_symbols"].startswith("not sent")  # no worker: the asset still succeeds
    doc = json.loads(redis_client.get(keys.universe(1)))
    assert doc["exchange_id"] == 1 and doc["exchange"] == "coinbase" and doc["updated_at"]
    assert doc["symbols"] == [
        {"symbol": "BTC-USD", "tier": 1, "pool": "shared", "users": []},
        {"symbol": "ETH-USD", "tier": 1, "pool": "shared", "users": [7]},
        {"symbol": "FOO-USD", "tier": 2, "pool": "user", "users": [7, 9]},
    ]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(exchange_symbols.c.symbol, exchange_symbols.c.tier, exchange_symbols.c.base,
                                      exchange_symbols.c.quote, exchange_symbols.c.price)
                            .where(exchange_symbols.c.exchange_id == 1).order_by(exchange_symbols.c.symbol)).all()
    assert [tuple(r) for r in rows] == [("BTC-USD", 1, "BTC", "USD", 1.0), ("ETH-USD", 1, "ETH", "USD", 1.0),
                                        ("FOO-USD", 2, "FOO", "USD", 3.0)]


def test_tier2_symbol_promoted_to_tier1_keeps_one_row(resources, engine, instance):
    add_user(engine, 7, 1, "K7", "S7")
    with engine.begin() as conn:
        replace_tier1(conn, 1, ranked("BTC-USD"), now())
        replace_positions(conn, 7, 1, [holding("FOO", "FOO-USD")], now())
    dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="coinbase")
    with engine.begin() as conn:  # FOO-USD now ranks: its tier-2 row must make way
        replace_tier1(conn, 1, ranked("BTC-USD", "FOO-USD"), now())
    dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="coinbase")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(exchange_symbols.c.symbol, exchange_symbols.c.tier)
                            .order_by(exchange_symbols.c.symbol)).all()
    assert [tuple(r) for r in rows] == [("BTC-USD", 1), ("FOO-USD", 1)]


def _blocked(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """A universe stopped by its blocking checks: the run failed naming them, nothing was materialized."""
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and "blocking asset check" in error.message
    assert result.asset_materializations_for_node("symbol_universe") == []
    evaluations = result.get_asset_check_evaluations()
    assert all(e.blocking and e.severity == dg.AssetCheckSeverity.ERROR for e in evaluations)
    return {e.check_name: e.passed for e in evaluations}


def test_universe_checks_are_blocking_in_the_definitions():
    specs = {spec.name: spec for spec in symbol_universe.check_specs}
    assert set(specs) == {"not_empty", "no_duplicates", "within_stream_limits"}
    assert all(spec.blocking for spec in specs.values())


def test_empty_universe_fails_check_and_keeps_last_good(resources, redis_client, instance):
    redis_client.set(keys.universe(2), json.dumps({"symbols": [{"symbol": "OLDUSDT"}]}))
    result = dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="binance",
                            raise_on_error=False)
    checks = _blocked(result)
    assert checks["not_empty"] is False
    assert json.loads(redis_client.get(keys.universe(2)))["symbols"] == [{"symbol": "OLDUSDT"}]


def test_over_stream_limit_fails_check(resources, engine, redis_client, instance):
    with engine.begin() as conn:
        conn.execute(exchanges_table.update().where(exchanges_table.c.id == 2)
                     .values(api_limits={"ws_streams_per_connection": 5, "ws_max_connections": 2}))
        replace_tier1(conn, 2, ranked("AUSDT", "BUSDT", "CUSDT"), now())
    result = dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="binance",
                            raise_on_error=False)
    checks = _blocked(result)
    assert checks == {"not_empty": True, "no_duplicates": True, "within_stream_limits": False}
    assert redis_client.get(keys.universe(2)) is None


def test_unknown_or_inactive_exchange_fails_with_advice(resources, engine, instance):
    with engine.begin() as conn:
        conn.execute(exchanges_table.update().where(exchanges_table.c.id == 3).values(is_active=False))
    result = dg.materialize([symbol_universe], resources=resources, instance=instance, partition_key="binance_us",
                            raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert "deactivated" in failure.description
