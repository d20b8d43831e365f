"""What workers say about themselves and about the exchanges they serve.

Heartbeat: HASH `workers` field worker_id, and `worker:{id}:heartbeat`, every ~2 s.
ExchangeStatus: the fields of HASHes `exchange:{id}:status` (merged) and `exchange:{id}:status:{worker}`.
LifecycleEvent: `channel:exchange:{id}:lifecycle` and stream `stream:lifecycle` (field `json`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from streaming.contracts.fields import ExchangeId, ExchangeName, IsoTime, UserId, WorkerId
from streaming.redis_text import str_hash

# the values of streaming.adapters.base.ConnectionState (a test keeps the two equal)
ConnectionStateName = Literal["idle", "connecting", "connected", "disconnected", "error"]
LifecycleEventName = Literal["exchange:connecting", "exchange:connected", "exchange:disconnected",
                             "stream:stale", "stream:recovered"]
ShardLabel = Annotated[str, Meta(pattern=r"^\d{1,4}/\d{1,4}$", description="`K/N`")]


class WarmUpProgress(msgspec.Struct, frozen=True, kw_only=True):
    """An exchange's REST warm-up on one worker (history for every symbol and timeframe before
    going live), as it runs."""

    streams_done: Annotated[int, Meta(ge=0, description="(symbol, timeframe) streams fetched so far")]
    streams_total: Annotated[int, Meta(ge=0, description="streams to fetch")]
    candles: Annotated[Annotated[int, Meta(ge=0)] | None, Meta(description=(
        "candles written so far; null while the warm-up does not count them as it goes"))] = None
    requests: Annotated[Annotated[int, Meta(ge=0)] | None, Meta(description=(
        "REST candle requests the warm-up sent; null until it is done"))] = None
    started_at: Annotated[IsoTime, Meta(description="when the warm-up started")]
    eta_s: Annotated[Annotated[float, Meta(ge=0)] | None, Meta(description=(
        "seconds left at the pace so far; null until the first stream is done"))] = None


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """A live worker. Workers write every field; readers ignore a heartbeat older than 15 s and
    prune unreadable ones and those older than an hour."""

    worker_id: WorkerId
    host: Annotated[str, Meta(description="host name")] = ""
    pid: Annotated[int, Meta(ge=0, description="process id on that host")] = 0
    started_at: Annotated[IsoTime | None, Meta(description="when this run of the worker started")] = None
    last_heartbeat: Annotated[IsoTime, Meta(description="when it was written")]
    exchanges: Annotated[dict[str, str], Meta(description=(
        "exchange name -> connection state (idle, connecting, connected, disconnected, error)"))] = {}
    shard: Annotated[ShardLabel | None, Meta(description="the --shard of the worker, else null")] = None
    user: Annotated[UserId | None, Meta(description="the system user with --user, else null")] = None
    warm_up: Annotated[dict[str, WarmUpProgress], Meta(description=(
        "exchange name -> its warm-up, for the exchanges warming up now"))] = {}


class ExchangeStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an exchange's status HASH: every value a string, times ISO 8601 UTC, a
    field never written is absent (None here)."""

    connection_state: Annotated[str | None, Meta(description=(
        "merged: connected if any live worker is, else connecting, else error, else disconnected, "
        "else idle"))] = None
    connected_at: Annotated[str | None, Meta(description=(
        "when the connection came up (merged: the earliest among the connected workers); empty once "
        "it is stopped"))] = None
    last_heartbeat: Annotated[str | None, Meta(description="the latest frame from the exchange")] = None
    last_error: Annotated[str | None, Meta(description=(
        "why the exchange is not connected: the last connection error with what to do; emptied by a "
        "stop and by a connection that comes up"))] = None
    updated_at: Annotated[str | None, Meta(description="when the hash was last written")] = None
    worker_id: Annotated[str | None, Meta(description="the worker that wrote it last")] = None
    worker_states: Annotated[str | None, Meta(description=(
        "merged hash only: JSON object worker_id -> that worker's state"))] = None
    warmup_done: Annotated[str | None, Meta(description=(
        "the warm-up: (symbol, timeframe) streams fetched so far (merged: summed over the workers); "
        "absent when no warm-up ran"))] = None
    warmup_total: Annotated[str | None, Meta(description="the warm-up: streams to fetch (merged: summed)")] = None
    warmup_candles: Annotated[str | None, Meta(description=(
        "the warm-up: candles written so far, empty while not counted yet (merged: summed)"))] = None
    warmup_requests: Annotated[str | None, Meta(description=(
        "REST candle requests of the last warm-up, once it is done (merged: summed); 0 on a warm "
        "restart with nothing missing"))] = None
    warmup_started_at: Annotated[str | None, Meta(description=(
        "when the warm-up started (merged: the earliest)"))] = None
    warmup_eta_s: Annotated[str | None, Meta(description=(
        "seconds the warm-up still needs at its pace so far, empty when unknown or done (merged: the "
        "longest)"))] = None
    stale_streams: Annotated[str | None, Meta(description=(
        "live (symbol, timeframe) streams with no frame past their threshold now (merged: summed); "
        "absent until a stream went stale"))] = None
    history_missing: Annotated[str | None, Meta(description=(
        "(symbol, timeframe) streams whose warm-up failed and whose history is not in yet (fetched "
        "again in the background; merged: summed); absent until a warm-up failed"))] = None

    def fields(self) -> dict[Any, str]:
        """The HSET mapping: the fields that are set."""
        return {k: v for k, v in msgspec.structs.asdict(self).items() if v is not None}


class LifecycleEvent(msgspec.Struct, frozen=True):
    """A change of an exchange's connection on one worker (`exchange:*`), or of one of its live
    streams (`stream:stale`: no frame past its threshold, resubscribed; `stream:recovered`)."""

    event: LifecycleEventName
    exchange_id: ExchangeId
    exchange: ExchangeName
    worker_id: WorkerId
    state: Annotated[ConnectionStateName, Meta(description=(
        "the worker's new state; `exchange:disconnected` covers disconnected, error and idle"))]
    reason: Annotated[str | None, Meta(description="why, when there is a reason (an error, a stop)")]
    at: Annotated[IsoTime, Meta(description="when it happened")]
    symbols: Annotated[Annotated[int, Meta(ge=0)] | None, Meta(description=(
        "how many symbols the worker serves on the exchange; null until it knows"))]
    symbol: Annotated[str | None, Meta(description="`stream:*` events: the stream's symbol, else null")] = None
    timeframe: Annotated[str | None, Meta(description="`stream:*` events: the stream's timeframe, else null")] = None


def status_from_hash(raw: Mapping[Any, Any]) -> ExchangeStatus:
    """An HGETALL reply (str or bytes) as an ExchangeStatus; fields it does not know are ignored."""
    return msgspec.convert(str_hash(raw), ExchangeStatus)
