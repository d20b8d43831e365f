"""`audit_candles` job and its hourly schedule: one `candle_audit` run per active exchange.

On by default: a run costs (symbols_per_run x timeframes) REST requests per exchange, 25 with the
defaults, far inside every exchange's limits; it never publishes anything, and with nothing stored
it makes no request at all. It runs at half past the hour, away from the symbol refresh on the hour.
"""

from collections.abc import Iterator

import dagster as dg
from dagster import ScheduleEvaluationContext

from livermore_pipelines.resources import DatabaseResource
from livermore_pipelines.schedules import active_partitions

AUDIT_CRON = "30 * * * *"

audit_candles = dg.define_asset_job(
    "audit_candles",
    selection=dg.AssetSelection.assets("candle_audit"),
    description="Compare a sample of stored candles of one exchange with its REST candles and repair them.",
)


@dg.schedule(job=audit_candles, cron_schedule=AUDIT_CRON, name="candle_audit_schedule",
             default_status=dg.DefaultScheduleStatus.RUNNING,
             description="Audit a sample of every active exchange's stored candles against its REST candles.")
def candle_audit_schedule(context: ScheduleEvaluationContext, database: DatabaseResource) -> Iterator[dg.RunRequest]:
    tick = context.scheduled_execution_time.isoformat()
    for name in active_partitions(database):
        yield dg.RunRequest(run_key=f"audit:{name}:{tick}", partition_key=name, tags={"exchange": name})
