"""`exchanges`: schema migrated and seeded, exchange metadata synced into Redis."""

import dagster as dg
from dagster import AssetExecutionContext

from livermore_pipelines.resources import DatabaseResource, RedisResource
from livermore_pipelines.store import sync_exchange_meta
from streaming.db.migrate import upgrade
from streaming.db.queries import list_exchanges

EXCHANGES_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("id", "int"), dg.TableColumn("name", "string"), dg.TableColumn("display_name", "string"),
    dg.TableColumn("is_active", "bool"), dg.TableColumn("ws_url", "string"), dg.TableColumn("rest_url", "string"),
    dg.TableColumn("connection_state", "string"),
])


@dg.asset(group_name="exchanges", kinds={"redis", "sql"},
          description="Exchanges table (migrated + seeded) mirrored into Redis for the streaming worker.")
def exchanges(context: AssetExecutionContext, database: DatabaseResource,
              redis: RedisResource) -> dg.MaterializeResult:
    # idempotent: a no-op on an up-to-date database, and it seeds only missing rows
    inserted = upgrade(database.url)
    with database.engine() as engine, engine.connect() as conn:
        rows = list_exchanges(conn)
    with redis.client() as r:
        sync_exchange_meta(r, rows)
    context.log.info("synced %d exchanges to Redis (%d seeded now)", len(rows), inserted)
    records = [dg.TableRecord({
        "id": int(row["id"]), "name": row["name"], "display_name": row["display_name"],
        "is_active": bool(row["is_active"]), "ws_url": row["ws_url"], "rest_url": row["rest_url"],
        "connection_state": row.get("connection_state") or "idle",
    }) for row in rows]
    return dg.MaterializeResult(metadata={
        "count": len(rows),
        "active": sum(1 for row in rows if row["is_active"]),
        "seeded_now": inserted,
        "exchanges": dg.MetadataValue.table(records, schema=EXCHANGES_TABLE),
    })
