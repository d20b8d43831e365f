"""`alert_destinations`: where `livermore notify` sends alerts, as the database says, shown in Dagster.

Read-only: destinations and subscriptions are managed with `livermore notify add/remove`. The
metadata holds variable NAMES and webhook hosts only, never a secret.
"""

import dagster as dg
from dagster import AssetExecutionContext

from livermore_pipelines.resources import DatabaseResource
from streaming.db.queries import list_exchanges
from streaming.errors import UsageError
from streaming.notify import store
from streaming.notify.subscriptions import describe

DESTINATIONS_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("name", "string"), dg.TableColumn("kind", "string"), dg.TableColumn("url", "string"),
    dg.TableColumn("variables", "string"), dg.TableColumn("rate", "string"), dg.TableColumn("charts", "bool"),
    dg.TableColumn("subscriptions", "int"),
])
SUBSCRIPTIONS_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("id", "int"), dg.TableColumn("destination", "string"), dg.TableColumn("filters", "string"),
])


@dg.asset(group_name="notify", kinds={"sql"},
          description="Alert destinations and subscriptions of `livermore notify` (no secrets: variable names only).")
def alert_destinations(context: AssetExecutionContext, database: DatabaseResource) -> dg.MaterializeResult:
    try:
        with database.engine() as engine, engine.connect() as conn:
            dests = store.list_destinations(conn)
            subs = store.list_subscriptions(conn)
            names = {int(r["id"]): r["name"] for r in list_exchanges(conn)}
    except UsageError as exc:
        raise dg.Failure(description=f"{exc} (or materialize the `exchanges` asset)") from None
    by_id = {d.id: d.name for d in dests}
    rows = [dg.TableRecord({
        "name": d.name, "kind": d.kind, "url": d.display_url(), "variables": ", ".join(d.variables()),
        "rate": str(d.rate_limit() or "unlimited"), "charts": d.charts,
        "subscriptions": sum(1 for s in subs if s.destination_id == d.id),
    }) for d in dests]
    sub_rows = [dg.TableRecord({"id": s.id, "destination": by_id.get(s.destination_id, "?"),
                                "filters": describe(s, names)}) for s in subs]
    context.log.info("%d alert destinations, %d subscriptions", len(dests), len(subs))
    return dg.MaterializeResult(metadata={
        "destinations_count": len(dests),
        "subscriptions_count": len(subs),
        "destinations": dg.MetadataValue.table(rows, schema=DESTINATIONS_TABLE),
        "subscriptions": dg.MetadataValue.table(sub_rows, schema=SUBSCRIPTIONS_TABLE),
    })
