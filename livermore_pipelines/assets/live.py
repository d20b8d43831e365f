"""The live side in the asset graph: `live_candles` (the worker writes them) and `alert_history`.

Neither is computed by a Dagster run. The streaming worker writes candles into Redis and the
alert archive sensor copies alerts into the database, so both are external assets (AssetSpec)
whose events sensors report: observations and checks of live_candles by live_candles_sensor,
materializations of alert_history by alert_archive_sensor.

Dagster's FreshnessPolicy counts materializations only (not observations) and judges the asset
as a whole, so the live sensor reports a runless materialization of an exchange's partition
whenever new closes arrived, and the `{exchange}_fresh` check says it for each exchange.
"""


from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster import AssetCheckExecutionContext

from livermore_pipelines import live_health
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.partitions import EXCHANGE_NAMES, exchange_partitions
from livermore_pipelines.resources import RedisResource

LIVE_CANDLES = dg.AssetKey("live_candles")
ALERT_HISTORY = dg.AssetKey("alert_history")

live_candles = dg.AssetSpec(
    LIVE_CANDLES, deps=[symbol_universe], partitions_def=exchange_partitions, group_name="live",
    kinds={"redis"},
    description="Closed candles and MACD-V indicators the streaming worker writes to Redis for the exchange's "
                "universe. Observed by live_candles_sensor (streams live/stale, closes, close lag, REST, reconnects); "
                "materialized (runless) whenever new closes arrived.",
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=live_health.FRESH_WINDOW,
                                                    warn_window=live_health.FRESH_WINDOW * 2 / 3),
)

alert_history = dg.AssetSpec(
    ALERT_HISTORY, deps=[live_candles], group_name="live", kinds={"sql"},
    description="MACD-V alerts archived from the Redis stream `stream:alerts` into the alert_history table; "
                "materialized (runless) by alert_archive_sensor with what it archived.",
)

CHECK_DESCRIPTIONS = {
    "streams_live": "WARN when some (symbol, timeframe) streams of {exchange} get no data past their threshold",
    "worker_alive": "ERROR when {exchange} should stream (its status is connected/connecting) but no live worker "
                    "streams it",
    "fresh": f"WARN when {{exchange}} published no close for {int(live_health.FRESH_WINDOW.total_seconds() // 60)} "
             "min while it should stream",
}


def check_name(exchange: str, check: str) -> str:
    """One check per exchange and kind, e.g. `coinbase_worker_alive`.

    Not one partitioned check: Dagster 1.13 records a runless evaluation of a partitioned check
    only once per partition (a unique index on asset, check, run id and partition), and the
    sensor reports these every tick.
    """
    return f"{exchange}_{check}"


live_check_specs = [dg.AssetCheckSpec(check_name(exchange, check), asset=LIVE_CANDLES,
                                      description=text.format(exchange=exchange))
                    for exchange in EXCHANGE_NAMES for check, text in CHECK_DESCRIPTIONS.items()]

SEVERITY = {"WARN": dg.AssetCheckSeverity.WARN, "ERROR": dg.AssetCheckSeverity.ERROR}


def check_evaluations(health: live_health.LiveHealth) -> list[dg.AssetCheckEvaluation]:
    """The live checks of one exchange as runless evaluations."""
    meta: dict[str, Any] = {"exchange": health.exchange, "state": health.state, "streams": health.streams,
                            "streams_stale": len(health.stale), "workers": len(health.workers)}
    return [dg.AssetCheckEvaluation(asset_key=LIVE_CANDLES, check_name=check_name(health.exchange, o.name),
                                    passed=o.passed, severity=SEVERITY[o.severity], description=o.description,
                                    metadata={**meta, "last_close_at": health.last_close_at or "never"}
                                    if o.name == "fresh" else meta)
            for o in live_health.checks(health)]


@dg.multi_asset_check(specs=live_check_specs, name="live_candles_checks",
                      description="The live checks on demand; live_candles_sensor reports them every tick.")
def live_candles_checks(context: AssetCheckExecutionContext,
                        redis: RedisResource) -> Iterator[dg.AssetCheckResult]:
    from livermore_pipelines.live_sensor import exchange_health, last_materialized_at

    now = datetime.now(UTC)
    with redis.client() as r:
        for exchange in EXCHANGE_NAMES:
            health = exchange_health(r, exchange, {}, last_materialized_at(context.instance, exchange), now)
            if health is None:  # unknown to Redis: nothing was ever started
                health = live_health.assess(exchange, None, [], {}, {}, None, now)
            for evaluation in check_evaluations(health):
                yield dg.AssetCheckResult(asset_key=LIVE_CANDLES, check_name=evaluation.check_name,
                                          passed=evaluation.passed, severity=evaluation.severity,
                                          description=evaluation.description, metadata=evaluation.metadata)
