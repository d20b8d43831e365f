"""`tier1_symbols` and `tier2_positions`, one partition per exchange."""

import os
from collections import defaultdict
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from livermore_pipelines.assets.common import exchange_row, utcnow
from livermore_pipelines.assets.exchanges import exchanges
from livermore_pipelines.partitions import exchange_partitions
from livermore_pipelines.ranking import RankingConfig, RankingConfigError, rank_products
from livermore_pipelines.resources import DatabaseResource, ExchangeClientsResource, RedisResource, run_async
from livermore_pipelines.store import active_accounts, replace_positions, replace_tier1, write_tier1_redis
from livermore_pipelines.valuation import DEFAULT_MIN_VALUE_USD, value_balances
from streaming.adapters.base import AdapterError, AuthError, Credentials
from streaming.models import Balance

RANKED_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("rank", "int"), dg.TableColumn("symbol", "string"),
    dg.TableColumn("volume_24h_usd", "float"), dg.TableColumn("price", "float"),
])
POSITIONS_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("user_id", "int"), dg.TableColumn("symbol", "string"), dg.TableColumn("asset", "string"),
    dg.TableColumn("quantity", "float"), dg.TableColumn("value_usd", "float"),
])


class Tier1Config(dg.Config):
    top_n: int = 50
    quotes: list[str] = ["USD", "USDC", "USDT"]
    min_volume_usd: float = 0.0
    extra_stablecoins: list[str] = []
    one_per_base: bool = False

    def ranking(self) -> RankingConfig:
        return RankingConfig(top_n=self.top_n, quotes=tuple(self.quotes), min_volume_usd=self.min_volume_usd,
                             extra_stablecoins=tuple(self.extra_stablecoins), one_per_base=self.one_per_base)


def _ranked_markdown(ranked: list[Any]) -> str:
    lines = ["| rank | symbol | 24h volume (USD) | price |", "|---:|---|---:|---:|"]
    lines += [f"| {s.rank} | {s.symbol} | {s.volume_24h_usd:,.0f} | {s.price:g} |" for s in ranked]
    return "\n".join(lines)


@dg.asset(partitions_def=exchange_partitions, deps=[exchanges], group_name="symbols", kinds={"redis", "sql"},
          description="Top N spot symbols by 24 h USD volume (USD/USDC/USDT quotes, no stablecoins).")
def tier1_symbols(context: AssetExecutionContext, config: Tier1Config, database: DatabaseResource,
                  redis: RedisResource, exchange_clients: ExchangeClientsResource) -> dg.MaterializeResult:
    try:
        ranking = config.ranking()
        # validate before touching the network: a config mistake should not cost a REST call
        rank_products([], ranking)
    except RankingConfigError as exc:
        raise dg.Failure(description=f"tier1_symbols config: {exc}") from None
    row = exchange_row(database, context.partition_key)

    async def fetch() -> list[Any]:
        async with exchange_clients.adapter(row) as adapter:
            return await adapter.fetch_products()

    try:
        products = run_async(fetch())
    except AdapterError as exc:
        raise dg.Failure(description=f"{row['name']}: cannot list products: {exc}") from None
    result = rank_products(products, ranking)
    now = utcnow()
    with database.engine() as engine, engine.begin() as conn:
        replace_tier1(conn, int(row["id"]), result.ranked, now)
    with redis.client() as r:
        write_tier1_redis(r, int(row["id"]), row["name"], now.isoformat(), result.ranked)
    context.log.info("%s: %d of %d products ranked (dropped: %s)", row["name"], len(result.ranked),
                     result.considered, dict(result.dropped))
    return dg.MaterializeResult(metadata={
        "count": len(result.ranked),
        "products_considered": result.considered,
        "dropped": dict(result.dropped),
        "ranked": dg.MetadataValue.table(
            [dg.TableRecord({"rank": s.rank, "symbol": s.symbol, "volume_24h_usd": s.volume_24h_usd,
                             "price": s.price}) for s in result.ranked], schema=RANKED_TABLE),
        "preview": dg.MetadataValue.md(_ranked_markdown(result.ranked[:50])),
    })


class Tier2Config(dg.Config):
    min_value_usd: float = DEFAULT_MIN_VALUE_USD
    excluded_assets: list[str] = []


def _credentials(account: dict[str, Any]) -> tuple[Credentials | None, str | None]:
    """Credentials from the env vars the account names, or the reason they are unusable (names only)."""
    missing = [account[k] for k in ("api_key_env", "api_secret_env") if not os.environ.get(account[k])]
    if missing:
        return None, f"environment variable(s) {', '.join(missing)} not set"
    return Credentials(os.environ[account["api_key_env"]], os.environ[account["api_secret_env"]]), None


@dg.asset(partitions_def=exchange_partitions, deps=[exchanges], group_name="symbols", kinds={"sql"},
          description="Users' holdings worth >= $2 (no fiat, no stablecoins), from their exchange balances.")
def tier2_positions(context: AssetExecutionContext, config: Tier2Config, database: DatabaseResource,
                    exchange_clients: ExchangeClientsResource) -> dg.MaterializeResult:
    row = exchange_row(database, context.partition_key)
    exchange_id = int(row["id"])
    with database.engine() as engine, engine.connect() as conn:
        accounts = active_accounts(conn, exchange_id)
    by_user: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for account in accounts:
        by_user[int(account["user_id"])].append(account)
    problems: dict[int, str] = {}
    balances: dict[int, list[Balance]] = defaultdict(list)

    async def fetch_all() -> list[Any]:
        async with exchange_clients.adapter(row) as adapter:
            for user_id, user_accounts in by_user.items():
                for account in user_accounts:
                    creds, problem = _credentials(account)
                    if creds is None:
                        problems[user_id] = f"account {account['label']!r}: {problem}"
                        break
                    try:
                        balances[user_id].extend(await adapter.fetch_balances(creds))
                    except AuthError as exc:
                        problems[user_id] = f"account {account['label']!r}: credentials rejected ({exc})"
                        break
                    except AdapterError as exc:
                        problems[user_id] = f"account {account['label']!r}: balances unavailable ({exc})"
                        break
            if len(problems) == len(by_user):
                return []  # nobody to value: spare the products call
            return await adapter.fetch_products()

    try:
        products = run_async(fetch_all())
    except AdapterError as exc:
        raise dg.Failure(description=f"{row['name']}: cannot list products to value balances: {exc}") from None
    now = utcnow()
    records: list[dg.TableRecord] = []
    synced: list[int] = []
    with database.engine() as engine, engine.begin() as conn:
        for user_id in by_user:
            if user_id in problems:
                continue  # keep the last good positions of a user we could not read
            valuation = value_balances(balances[user_id], products, config.min_value_usd, config.excluded_assets)
            replace_positions(conn, user_id, exchange_id, valuation.holdings, now)
            synced.append(user_id)
            records += [dg.TableRecord({"user_id": user_id, "symbol": h.symbol, "asset": h.asset,
                                        "quantity": h.quantity, "value_usd": round(h.value_usd, 2)})
                        for h in valuation.holdings]
    for user_id, problem in problems.items():
        context.log.warning("%s: user %d skipped, positions left as they were: %s", row["name"], user_id, problem)
    return dg.MaterializeResult(metadata={
        "users_synced": len(synced),
        "users_skipped": len(problems),
        "skipped": {str(u): p for u, p in problems.items()},
        "positions": len(records),
        "holdings": dg.MetadataValue.table(records, schema=POSITIONS_TABLE),
    })
