"""The code location (workspace.yaml loads `defs`), built when Dagster loads it, not at import.

`defs()` reads the deployment's settings (resources, refresh cron, live sensor interval) each
time it is called, so a test or a tool can import this module without a configured environment.
"""

import dagster as dg

from livermore_pipelines.assets.audit import candle_audit
from livermore_pipelines.assets.exchanges import exchanges
from livermore_pipelines.assets.live import alert_history, live_candles, live_candles_checks
from livermore_pipelines.assets.notify import alert_destinations
from livermore_pipelines.assets.tiers import tier1_symbols, tier2_positions
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.audit_schedule import audit_candles, candle_audit_schedule
from livermore_pipelines.jobs import refresh_symbols, start_streaming, stop_streaming
from livermore_pipelines.live_sensor import build_live_candles_sensor
from livermore_pipelines.resources import resources_for_deployment
from livermore_pipelines.schedules import build_refresh_schedule, refresh_cron
from livermore_pipelines.sensors import alert_archive_sensor, worker_health_sensor
from streaming.settings import current_settings


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[exchanges, tier1_symbols, tier2_positions, symbol_universe, live_candles, alert_history,
                alert_destinations, candle_audit],
        asset_checks=[live_candles_checks],
        jobs=[refresh_symbols, start_streaming, stop_streaming, audit_candles],
        schedules=[build_refresh_schedule(refresh_cron()), candle_audit_schedule],
        sensors=[worker_health_sensor, build_live_candles_sensor(current_settings().live_sensor_s),
                 alert_archive_sensor],
        resources=resources_for_deployment(),
    )
