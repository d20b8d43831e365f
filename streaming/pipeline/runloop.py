"""The pipelined run loop of CandlePipeline (core.py): the listener's queue in batches, up to
`config.pipeline_depth` script calls in flight, failed batches requeued in order."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from streaming.models import CandleUpdate
from streaming.pipeline.staging import Batch

log = logging.getLogger("streaming.pipeline.core")  # the pipeline's one logger, as before the split


class RunLoop:
    """CandlePipeline's run loop: run(), close(), drain() and the batches in flight."""

    async def run(self) -> None:
        """Consume the listener's queue until close(). Redis errors are retried, never fatal.

        Pipelined: while one batch's script runs in Redis, the next batch is prepared here (MACD-V,
        alerts, JSON), up to `config.pipeline_depth` calls in flight. Batches in flight never share
        a stream, so each stream's closes still reach Redis in order; a failed batch is requeued
        in front of everything queued after it."""
        flusher = None
        if self.aggregated and self.config.flush_interval_s > 0:
            flusher = asyncio.create_task(self._flush_loop())
        q = self.listener.queue
        ready = self.listener.ready
        inflight = self._inflight
        depth = self.config.pipeline_depth
        try:
            while not self._closed:
                if inflight and inflight[0].task.done():  # type: ignore[union-attr]
                    if await self._settle(len(inflight) - 1):
                        await asyncio.sleep(0.5)
                    continue
                if not q:
                    ready.clear()
                    await ready.wait()  # a new close, or a batch in flight finished
                    continue
                if len(inflight) >= depth:
                    if await self._settle(depth - 1):
                        await asyncio.sleep(0.5)
                    continue
                n = min(len(q), self.config.batch_max)
                entries = [q.popleft() for _ in range(n)]
                try:
                    if not await self._submit(entries):
                        await asyncio.sleep(0.5)
                except (RedisError, OSError) as exc:
                    self._redis_failed(exc)
                    q.extendleft(reversed(entries))
                    await asyncio.sleep(0.5)
                except Exception:
                    self._batch_failed(entries)
        finally:
            try:
                await self._settle()
            finally:
                if flusher is not None:
                    flusher.cancel()
                    await asyncio.gather(flusher, return_exceptions=True)

    def _redis_failed(self, exc: BaseException) -> None:
        self.counters["redis_errors"] += 1
        self._log.warning("redis", "pipeline %s: Redis failed (%s); retrying the batch", self.exchange_name, exc)

    def _batch_failed(self, entries: Sequence[tuple[int, CandleUpdate]]) -> None:
        # a bug must not stop the live side: drop the batch, rebuild its streams from Redis
        self.counters["batch_errors"] += 1
        log.exception("pipeline %s: a batch of %d closes failed; dropped", self.exchange_name, len(entries))
        for _, u in entries:
            self._states.pop((getattr(u, "symbol", ""), getattr(u, "timeframe", "")), None)
        self._aggs.clear()

    async def _submit(self, entries: list[tuple[int, CandleUpdate]]) -> bool:
        """Stage queue entries as one batch and start its script call without waiting for it.
        Returns False if an earlier batch failed and everything was requeued instead."""
        async with self._lock:
            items = [u for _, u in entries if self._valid(u)]
            if not items:
                return True
            busy = self._busy
            # one stream in two calls in flight could reach Redis out of order (and aggregation
            # state spans timeframes): wait for the earlier calls first
            conflict = self.aggregated or (busy and any((u.symbol, u.timeframe) in busy for u in items))
            if conflict and await self._settle(requeue_after=entries):
                return False
            self.counters["closes_received"] += len(items)
            await self._load(items)
            batch = Batch()
            corrections = self._stage_all(batch, items)
            if corrections or not batch.staged:
                await self._execute(batch)
                await self._correct(corrections)
                return True
            batch.entries = entries
            for sym, tf, _, _ in batch.staged:
                busy[(sym, tf)] += 1
            task = asyncio.ensure_future(self._call(batch))
            task.add_done_callback(self._wake)
            batch.task = task
            self._inflight.append(batch)
        await asyncio.sleep(0)  # let the call write its command before the next batch is prepared
        return True

    def _wake(self, _task: asyncio.Future[Any]) -> None:
        self.listener.ready.set()

    async def _settle(self, keep: int = 0, requeue_after: list[tuple[int, CandleUpdate]] | None = None) -> int:
        """Finish calls in flight (oldest first) until at most `keep` remain; returns how many
        failed. Failed batches go back to the front of the queue, oldest first (followed by
        `requeue_after`, if any failed); their streams and the aggregators are rebuilt from Redis."""
        inflight = self._inflight
        failed: list[Batch] = []
        while len(inflight) > keep or (failed and inflight):
            batch = inflight[0]
            try:
                codes = await batch.task  # type: ignore[misc]
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                failed.append(batch)
                codes = None
            except BaseException:
                inflight.popleft()
                self._release(batch)
                self._forget(batch)
                raise
            inflight.popleft()
            self._release(batch)
            if codes is not None:
                self._finish(batch, codes)
        if failed:
            for batch in failed:
                self._forget(batch)
            back = [e for b in failed for e in b.entries] + (requeue_after or [])
            self.listener.queue.extendleft(reversed(back))
        return len(failed)

    def _release(self, batch: Batch) -> None:
        busy = self._busy
        for sym, tf, _, _ in batch.staged:
            k = (sym, tf)
            if busy[k] <= 1:
                del busy[k]
            else:
                busy[k] -= 1

    def _forget(self, batch: Batch) -> None:
        """The in-memory states of a batch's streams ran ahead of Redis: rebuild them from the store."""
        for sym, tf, _, _ in batch.staged:
            self._states.pop((sym, tf), None)
        self._aggs.clear()

    async def close(self) -> None:
        self._closed = True
        self.listener.ready.set()
        if self.reconciler is not None:
            await self.reconciler.close()

    async def drain(self) -> None:
        """Process everything queued so far (tests, bench, shutdown)."""
        q = self.listener.queue
        while q:
            n = min(len(q), self.config.batch_max)
            await self.process([q.popleft()[1] for _ in range(n)])
        async with self._lock:
            await self._settle()
