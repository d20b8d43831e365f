"""`exchanges`: exchange metadata from the database, synced into Redis.

Migrations are not this asset's job (`livermore db upgrade`, and `livermore up` on start, run
them): it refuses a schema that is behind rather than change it under a running worker.
"""

import dagster as dg
from dagster import AssetExecutionContext

from livermore_pipelines.resources import DatabaseResource, RedisResource
from livermore_pipelines.store import mirror_exchanges
from streaming.db.migrate import current_revision, head_revision

EXCHANGES_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("id", "int"), dg.TableColumn("name", "string"), dg.TableColumn("display_name", "string"),
    dg.TableColumn("is_active", "bool"), dg.TableColumn("ws_url", "string"), dg.TableColumn("rest_url", "string"),
    dg.TableColumn("connection_state", "string"),
])


@dg.asset(group_name="exchanges", kinds={"redis", "sql"},
          description="Exchanges table (migrated by `livermore db upgrade`) mirrored into Redis for the worker.")
def exchanges(context: AssetExecutionContext, database: DatabaseResource,
              redis: RedisResource) -> dg.MaterializeResult:
    with database.engine() as engine:
        current, head = current_revision(engine), head_revision()
        if current != head:
            raise dg.Failure(description=f"the database schema is at revision {current or 'none (empty database)'}, "
                                         f"the code needs {head}: run `livermore db upgrade` (or `livermore up`, "
                                         "which migrates on start), then materialize again")
        with engine.connect() as conn, redis.client() as r:
            rows = mirror_exchanges(conn, r)
    context.log.info("synced %d exchanges to Redis (schema at %s)", len(rows), current)
    records = [dg.TableRecord({
        "id": int(row["id"]), "name": row["name"], "display_name": row["display_name"],
        "is_active": bool(row["is_active"]), "ws_url": row["ws_url"], "rest_url": row["rest_url"],
        "connection_state": row.get("connection_state") or "idle",
    }) for row in rows]
    return dg.MaterializeResult(metadata={
        "count": len(rows),
        "active": sum(1 for row in rows if row["is_active"]),
        "schema_revision": current,
        "exchanges": dg.MetadataValue.table(records, schema=EXCHANGES_TABLE),
    })
