"""`symbol_universe`: Tier 1 + Tier 2 per exchange, checked, published for the worker.

The three checks are blocking: they are evaluated before anything is written, and when one fails
the asset is not materialized, nothing is published (the worker keeps the last good universe) and
the run fails naming the check; downstream assets do not run.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext

from livermore_pipelines.assets.common import exchange_row, utcnow
from livermore_pipelines.assets.tiers import tier1_symbols, tier2_positions
from livermore_pipelines.control import reload_symbols_if_running
from livermore_pipelines.partitions import exchange_partitions
from livermore_pipelines.resources import DatabaseResource, RedisResource
from livermore_pipelines.store import read_tier1, read_tier2, replace_tier2_symbols, write_universe
from livermore_pipelines.universe_builder import (
    build_universe,
    check_no_duplicates,
    check_not_empty,
    check_stream_limits,
    universe_document,
)

CHECKS = ("not_empty", "no_duplicates", "within_stream_limits")
UNIVERSE_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("symbol", "string"), dg.TableColumn("tier", "int"), dg.TableColumn("pool", "string"),
    dg.TableColumn("users", "string"),
])


class UniverseConfig(dg.Config):
    reload_timeout_s: float = 10.0


@dg.asset(
    partitions_def=exchange_partitions, deps=[tier1_symbols, tier2_positions], group_name="symbols",
    kinds={"redis", "sql"},
    description="Symbols the worker streams: Tier 1 (shared pool) plus Tier 2-only holdings (user pool).",
    check_specs=[
        dg.AssetCheckSpec("not_empty", asset="symbol_universe", description="at least one symbol", blocking=True),
        dg.AssetCheckSpec("no_duplicates", asset="symbol_universe", description="every symbol once", blocking=True),
        dg.AssetCheckSpec("within_stream_limits", asset="symbol_universe", blocking=True,
                          description="no more symbols than the exchange's WebSocket limits allow"),
    ],
    output_required=False,
)
def symbol_universe(context: AssetExecutionContext, config: UniverseConfig, database: DatabaseResource,
                    redis: RedisResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    row = exchange_row(database, context.partition_key)
    exchange_id, name = int(row["id"]), row["name"]
    with database.engine() as engine, engine.connect() as conn:
        tier1 = read_tier1(conn, exchange_id)
        tier2 = read_tier2(conn, exchange_id)
    entries = build_universe(tier1, [(int(t["user_id"]), t["symbol"]) for t in tier2])
    outcomes = {
        "not_empty": check_not_empty(entries),
        "no_duplicates": check_no_duplicates(entries),
        "within_stream_limits": check_stream_limits(entries, name, row.get("api_limits") or {}),
    }
    checks = [dg.AssetCheckResult(check_name=n, passed=o.passed, description=o.description,
                                  metadata=dict(o.metadata)) for n, o in outcomes.items()]
    if not all(o.passed for o in outcomes.values()):
        failed = "; ".join(o.description for o in outcomes.values() if not o.passed)
        # the worker keeps streaming the last good universe rather than a broken one
        context.log.error("%s: universe NOT published (last good one kept): %s", name, failed)
        yield from checks  # a failed blocking check fails the step: no materialization, nothing published
        return
    now = utcnow()
    with database.engine() as engine, engine.begin() as conn:
        replace_tier2_symbols(conn, exchange_id, entries, tier2, now)
    with redis.client() as r:
        write_universe(r, exchange_id, universe_document(exchange_id, name, now.isoformat(), entries))
        reload = reload_symbols_if_running(r, exchange_id, name, config.reload_timeout_s)
    context.log.info("%s: universe of %d symbols published; reload-symbols %s", name, len(entries), reload)
    yield dg.MaterializeResult(
        metadata={
            "count": len(entries),
            "tier1": sum(1 for e in entries if e.tier == 1),
            "user_pool": sum(1 for e in entries if e.pool == "user"),
            "published": True,
            "reload_symbols": reload,
            "symbols": dg.MetadataValue.table(
                [dg.TableRecord({"symbol": e.symbol, "tier": e.tier, "pool": e.pool,
                                 "users": ",".join(map(str, e.users))}) for e in entries],
                schema=UNIVERSE_TABLE),
        },
        check_results=checks,
    )
