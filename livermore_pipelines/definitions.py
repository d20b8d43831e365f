"""The code location: `dg dev -m livermore_pipelines.definitions` (workspace.yaml loads `defs`)."""

import dagster as dg

from livermore_pipelines.assets.audit import candle_audit
from livermore_pipelines.assets.exchanges import exchanges
from livermore_pipelines.assets.notify import alert_destinations
from livermore_pipelines.assets.tiers import tier1_symbols, tier2_positions
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.audit_schedule import audit_candles, candle_audit_schedule
from livermore_pipelines.jobs import refresh_symbols, start_streaming, stop_streaming
from livermore_pipelines.resources import resources_for_deployment
from livermore_pipelines.schedules import build_refresh_schedule, refresh_cron
from livermore_pipelines.sensors import alert_archive_sensor, connection_status_sensor, worker_health_sensor

defs = dg.Definitions(
    assets=[exchanges, tier1_symbols, tier2_positions, symbol_universe, alert_destinations, candle_audit],
    jobs=[refresh_symbols, start_streaming, stop_streaming, audit_candles],
    schedules=[build_refresh_schedule(refresh_cron()), candle_audit_schedule],
    sensors=[worker_health_sensor, connection_status_sensor, alert_archive_sensor],
    resources=resources_for_deployment(),
)
