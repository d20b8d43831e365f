"""The stats snapshot: every few seconds, each exchange this worker streams gets its reading
written to HASH keys.exchange_stats(id), field worker_id (streaming.contracts.stats).

A field is removed when the worker stops streaming the exchange and on a clean shutdown, so
Dagster's observation sensor reads only workers that are there (a killed worker's field stays
until its key expires; readers also check the worker's heartbeat).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import redis.asyncio as aioredis

from streaming import keys
from streaming.ratelog import RateLimitedLog
from streaming.timestamps import utc_iso
from streaming.worker.measure import ExchangeMeasure, exchange_stats

log = logging.getLogger(__name__)

STATS_TTL_S = keys.WORKER_STATUS_TTL_S  # the hash outlives its last writer by at most this much


class StatsWriter:
    def __init__(self, redis: aioredis.Redis, worker_id: str, since: str, measures: Mapping[str, ExchangeMeasure],
                 sessions: Callable[[], Mapping[str, Any]]) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.since = since
        self.measures = measures
        self.sessions = sessions
        self.written: dict[str, int] = {}  # exchange -> its id, where our field is now
        self._log = RateLimitedLog(log, 60.0)

    async def write(self) -> None:
        """One snapshot of every exchange with a session; fields of exchanges no longer streamed go."""
        now = utc_iso()
        live = self.sessions()
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in sorted(set(self.written) - set(live)):
                pipe.hdel(keys.exchange_stats(self.written.pop(name)), self.worker_id)
            for name in sorted(live):
                measure = self.measures.get(name)
                if measure is None:
                    continue
                stats = exchange_stats(measure.read(), self.worker_id, self.since, now)
                key = keys.exchange_stats(measure.exchange_id)
                pipe.hset(key, mapping={self.worker_id: msgspec.json.encode(stats)})
                pipe.expire(key, STATS_TTL_S)
                self.written[name] = measure.exchange_id
            await pipe.execute()

    async def forget(self) -> None:
        """Remove our fields (clean shutdown)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for exchange_id in set(self.written.values()):
                pipe.hdel(keys.exchange_stats(exchange_id), self.worker_id)
            await pipe.execute()
        self.written.clear()
