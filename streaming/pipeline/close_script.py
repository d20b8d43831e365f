"""The pipeline's one write to Redis per batch: the atomic CLOSE_BATCH script
(streaming.store.scripts), with its answer as one typed outcome per close."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from streaming import keys
from streaming.pipeline.config import PipelineConfig
from streaming.store import scripts


class CloseOutcome(StrEnum):
    """What CLOSE_BATCH did with one close (its value is the script's result digit)."""

    DUPLICATE = "0"  # the stored bar was identical and the marker already past it: nothing changed
    PUBLISHED = "1"  # newer than the stream's marker: stored, close event, indicator and alerts published
    CORRECTION = "2"  # not newer than the marker but different: the stored bar was replaced, nothing published


_BY_DIGIT = {o.value: o for o in CloseOutcome}


def parse_outcomes(result: Any, expected: int) -> list[CloseOutcome]:
    """The script's result string as outcomes; RuntimeError if it does not match the batch."""
    digits = result.decode() if isinstance(result, bytes) else str(result)
    if len(digits) != expected:
        raise RuntimeError(f"close script returned {len(digits)} results for {expected} closes")
    try:
        return [_BY_DIGIT[d] for d in digits]
    except KeyError:
        raise RuntimeError(f"close script returned an unknown result in {digits[:40]!r}") from None


def pack_specs(specs: Sequence[bytes]) -> bytes:
    """The batch as the script's one argument: a MessagePack array (array 32 header) of the specs,
    each already MessagePack. One argument instead of one per close: the client packs and Redis
    parses one bulk string, not hundreds."""
    return b"\xdd" + len(specs).to_bytes(4, "big") + b"".join(specs)


class _OwnConnection:
    """A connection of the client's pool kept for the close script, one call at a time. The
    single-connection client holds it only during a call: between calls it is the pool's in-use
    connection, closed with the pool, so a pipeline never closed leaves no client behind."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._client = aioredis.Redis(connection_pool=redis.connection_pool, single_connection_client=True)
        self._held: Any = None  # the connection, between calls (None until the first call takes one)

    async def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        client = self._client
        client.connection = self._held
        try:
            return await script(keys=keys, args=args, client=client)
        finally:
            self._held, client.connection = client.connection, None

    async def aclose(self) -> None:
        """Give the connection back to the pool."""
        if self._held is not None:
            self._client.connection, self._held = self._held, None
            await self._client.aclose()


class CloseScript:
    """CLOSE_BATCH for one exchange: the alerts channel and stream, the stream and candle bounds.

    Each call in flight (up to `pipeline_depth`) has a connection of the client's pool to itself.
    A call that takes a connection from the pool first waits for the pool's check of it (a read
    with a zero timeout: two turns of the event loop), and in a storm those turns run the next
    slices of frames and the next batch's staging: Redis sat idle for tens of milliseconds while
    a staged batch waited to be written. On a connection of its own the command is written as
    soon as the call starts."""

    def __init__(self, redis: aioredis.Redis, exchange_id: int, config: PipelineConfig) -> None:
        self._script = redis.register_script(scripts.CLOSE_BATCH)
        self._keys = [keys.ALERTS_STREAM]
        self._args: list[bytes | str | int] = [keys.alerts_channel(exchange_id), config.alerts_stream_maxlen,
                                               config.max_candles]
        self._idle = [_OwnConnection(redis) for _ in range(config.pipeline_depth)]
        self._closed = False

    async def call(self, specs: Sequence[bytes]) -> Any:
        """The raw script call over the specs of streaming.pipeline.staging (its result: one digit
        per close)."""
        args = [*self._args, pack_specs(specs)]
        own = self._idle.pop() if self._idle else None
        if own is None:  # more calls than the depth, or closed: through the pool
            return await self._script(keys=self._keys, args=args)
        try:
            return await own.call(self._script, self._keys, args)
        finally:
            if self._closed:
                await own.aclose()
            else:
                self._idle.append(own)

    async def run(self, specs: Sequence[bytes]) -> list[CloseOutcome]:
        """Run the script over a batch's specs, in order; one outcome per spec."""
        return parse_outcomes(await self.call(specs), len(specs))

    async def aclose(self) -> None:
        """Give the calls' connections back to the pool (one still in a call, when the call ends)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for own in idle:
            await own.aclose()
