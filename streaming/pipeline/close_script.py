"""The pipeline's one write to Redis per batch: the atomic CLOSE_BATCH script
(streaming.store.scripts), with its answer as one typed outcome per close."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
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


class CloseScript:
    """CLOSE_BATCH for one exchange: the alerts channel and stream, the stream and candle bounds."""

    def __init__(self, redis: aioredis.Redis, exchange_id: int, config: PipelineConfig) -> None:
        self._script = redis.register_script(scripts.CLOSE_BATCH)
        self._keys = [keys.ALERTS_STREAM]
        self._args: list[bytes | str | int] = [keys.alerts_channel(exchange_id), config.alerts_stream_maxlen,
                                               config.max_candles]

    def call(self, specs: Sequence[bytes]) -> Awaitable[Any]:
        """The raw script call over the specs of streaming.pipeline.staging (its result: one digit
        per close)."""
        return self._script(keys=self._keys, args=[*self._args, pack_specs(specs)])

    async def run(self, specs: Sequence[bytes]) -> list[CloseOutcome]:
        """Run the script over a batch's specs, in order; one outcome per spec."""
        return parse_outcomes(await self.call(specs), len(specs))
