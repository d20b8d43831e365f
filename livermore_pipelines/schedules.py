"""Hourly (by default) refresh of Tier 1, Tier 2 and the universe, one run per active exchange."""

from collections.abc import Iterator, Mapping

import dagster as dg
from dagster import ScheduleEvaluationContext

from livermore_pipelines.jobs import refresh_symbols
from livermore_pipelines.partitions import EXCHANGE_NAMES
from livermore_pipelines.resources import DatabaseResource
from streaming.db.queries import list_exchanges
from streaming.settings import current_settings, settings_from

DEFAULT_CRON = "0 * * * *"
CRON_ENV = "LIVERMORE_SYMBOL_REFRESH_CRON"


def refresh_cron(env: Mapping[str, str] | None = None) -> str:
    return (current_settings() if env is None else settings_from(env)).symbol_refresh_cron  # checked there


def active_partitions(database: DatabaseResource) -> list[str]:
    """Partitions of active exchanges; all of them when the database cannot say (first start)."""
    try:
        with database.engine() as engine, engine.connect() as conn:
            rows = list_exchanges(conn, active_only=True)
    except Exception:
        return list(EXCHANGE_NAMES)
    return [row["name"] for row in rows if row["name"] in EXCHANGE_NAMES]


def build_refresh_schedule(cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(job=refresh_symbols, cron_schedule=cron, name="refresh_symbols_schedule",
                 default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Refresh symbol tiers and universe of every active exchange ({CRON_ENV}).")
    def refresh_symbols_schedule(context: ScheduleEvaluationContext,
                                 database: DatabaseResource) -> Iterator[dg.RunRequest]:
        tick = context.scheduled_execution_time.isoformat()
        for name in active_partitions(database):
            yield dg.RunRequest(run_key=f"{name}:{tick}", partition_key=name, tags={"exchange": name})

    return refresh_symbols_schedule
