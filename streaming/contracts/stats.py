"""What a worker measures about the exchanges it streams, for Dagster's observation sensor.

ExchangeStats: HASH `exchange:{id}:stats`, field worker_id, value one JSON ExchangeStats, rewritten
every few seconds by each worker that streams the exchange and removed on its clean shutdown. The
counters are cumulative since the worker started (`since`): a reader takes differences between
two readings of the same worker and `since`; a new `since` means the worker restarted.
The same figures are exported to Prometheus by the worker's /metrics (docs/metrics.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from streaming.contracts.fields import IsoTime, WorkerId

Count = Annotated[int, Meta(ge=0)]
Millis = Annotated[float, Meta(ge=0)]


class ExchangeStats(msgspec.Struct, frozen=True, kw_only=True):
    """One worker's measurements of one exchange."""

    worker_id: WorkerId
    since: Annotated[IsoTime, Meta(description="when the worker started counting (its start)")]
    written_at: Annotated[IsoTime, Meta(description="when this reading was taken")]
    streams: Annotated[Count, Meta(description="(symbol, timeframe) streams the worker serves")] = 0
    stale: Annotated[list[str], Meta(description=(
        "streams with no data past their threshold, as `SYMBOL:timeframe`, sorted"))] = []
    frames: Annotated[Count, Meta(description="WebSocket frames received")] = 0
    closes: Annotated[dict[str, Count], Meta(description="close events published, by timeframe")] = {}
    close_lag_ms_p50: Annotated[Millis | None, Meta(description=(
        "bar end to close event, median over the recent closes (null before the first)"))] = None
    close_lag_ms_p99: Annotated[Millis | None, Meta(description=(
        "bar end to close event, 99th percentile over the recent closes (null before the first)"))] = None
    rest_requests: Annotated[Count, Meta(description="REST requests sent")] = 0
    rest_429: Annotated[Count, Meta(description=(
        "REST answers 429 or 418 (rate limited, or banned for ignoring it)"))] = 0
    reconnects: Annotated[Count, Meta(description="WebSocket reconnects")] = 0
    malformed_frames: Annotated[Count, Meta(description="frames that could not be parsed (skipped)")] = 0
    skipped_frames: Annotated[Count, Meta(description=(
        "parsed frames or closes skipped (unknown symbol, out of bounds, refused by the pipeline)"))] = 0
    corrections: Annotated[Count, Meta(description="closed bars corrected after their close event")] = 0
    history_missing: Annotated[Count, Meta(description=(
        "streams whose warm-up failed and whose history is not in yet (fetched again in the background)"))] = 0


def stats_from_hash(raw: Mapping[Any, Any]) -> dict[str, ExchangeStats]:
    """An HGETALL of `exchange:{id}:stats` as worker_id -> ExchangeStats; unreadable entries are left out."""
    out: dict[str, ExchangeStats] = {}
    for key, value in raw.items():
        worker = key.decode() if isinstance(key, bytes) else str(key)
        try:
            out[worker] = msgspec.json.decode(value, type=ExchangeStats)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
    return out
