"""The delivery service: stream:alerts -> subscriptions -> one outbox per destination -> senders.

One reader task feeds the consumer group's entries to the outboxes of the destinations whose
subscriptions match; one task per destination sends what its outbox releases (outbox.py: rate
limit, digests, retries); an entry is acknowledged when all its destinations are done with it.
Destinations and subscriptions are re-read from the database every `reload_s`, so `livermore
notify add/remove` needs no restart. docs/alert-delivery.md has the guarantees.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis.exceptions

from streaming.notify import envref, store
from streaming.notify.chart import ChartRenderer
from streaming.notify.clock import Clock, WallClock
from streaming.notify.consumer import AlertConsumer, Entry
from streaming.notify.destinations import Destination
from streaming.notify.events import AlertEvent, decode_alert, encode_alert
from streaming.notify.ledger import Ledger
from streaming.notify.outbox import Batch, Job, Outbox, RetryPolicy
from streaming.notify.sending import Sender, SendResult, build_sender
from streaming.notify.subscriptions import Subscription, route
from streaming.ratelog import RateLimitedLog

log = logging.getLogger(__name__)


def default_consumer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ServiceConfig:
    consumer: str = field(default_factory=default_consumer)
    lease_s: float = 30.0  # how long a send may take before another process may retry it
    claim_idle_s: float = 60.0  # entries idle this long on a consumer are taken over
    reload_s: float = 30.0
    heartbeat_s: float = 2.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    webhook_timeout_s: float = 3.0
    webhook_concurrency: int = 8  # sends in flight to one unlimited destination
    chart_concurrency: int = 2
    batch: int = 256


class _Broken:
    """A destination whose sender cannot be built (an unset variable): every send fails with why."""

    wants_chart = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def send(self, alerts: Any, digest: bool, chart: bytes | None = None) -> SendResult:
        return SendResult(False, self.reason)

    async def aclose(self) -> None:
        pass


@dataclass
class _Dest:
    dest: Destination
    sender: Sender
    outbox: Outbox
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    sends: set[asyncio.Task] = field(default_factory=set)


class NotifyService:
    def __init__(self, redis: Any, engine: Any, config: ServiceConfig | None = None,
                 env: Mapping[str, str] | None = None, clock: Clock | None = None) -> None:
        self.redis = redis
        self.engine = engine
        self.config = config or ServiceConfig()
        self.env = os.environ if env is None else env
        self.clock = clock or WallClock()
        self.redact = envref.Redactor()
        cfg = self.config
        self.consumer = AlertConsumer(redis, cfg.consumer, count=cfg.batch, claim_idle_ms=int(cfg.claim_idle_s * 1000))
        self.ledger = Ledger(redis, f"{cfg.consumer}:{uuid.uuid4().hex[:8]}", cfg.lease_s)
        self.charts = ChartRenderer(redis, concurrency=cfg.chart_concurrency)
        self.dests: dict[int, _Dest] = {}
        self.subs: list[Subscription] = []
        self.tiers: dict[tuple[int, str], int] = {}
        self.tracked: dict[str, int] = {}  # stream entry id -> jobs not finished
        self.pairs: set[tuple[int, str]] = set()  # (destination id, alert id) queued or in flight here
        self.stats = {"malformed": 0, "claimed": 0, "already_done": 0, "leased_elsewhere": 0}
        self._warn = RateLimitedLog(log)
        self._stopping = False
        self.ready = asyncio.Event()

    # --- configuration ---------------------------------------------------------------------

    def _load(self) -> tuple[list[Destination], list[Subscription], dict]:
        with self.engine.connect() as conn:
            return store.list_destinations(conn), store.list_subscriptions(conn), store.symbol_tiers(conn)

    def _sender(self, d: Destination) -> Sender:
        try:
            return build_sender(d, self.env, self.redact, self.clock.now, self.config.webhook_timeout_s)
        except (envref.MissingVariable, ValueError) as exc:
            reason = f"{exc} in the environment of `livermore notify`"
            log.error("destination %s cannot send: %s", d.name, reason)
            return _Broken(reason)

    def _limits(self, d: Destination) -> dict[str, Any]:
        limit = d.rate_limit()
        # one at a time under a limit (the digest decision needs the queue as it is); else parallel
        return {"limit": limit, "concurrency": 1 if limit else self.config.webhook_concurrency,
                "digest_max": 500 if d.kind == "webhook" else 5000}

    async def reload(self) -> None:
        dests, subs, tiers = await asyncio.to_thread(self._load)
        by_id = {d.id: d for d in dests}
        for gone in [i for i in self.dests if i not in by_id]:
            await self._remove(gone)
        for d in dests:
            cur = self.dests.get(d.id)
            if cur is not None and cur.dest == d:
                continue
            sender = self._sender(d)
            if isinstance(sender, _Broken):  # shown by `livermore notify status` before any alert fails
                await self.ledger.count(d.id, error=sender.reason)
            if cur is None:
                state = _Dest(d, sender, Outbox(policy=self.config.retry, **self._limits(d)))
                state.task = asyncio.create_task(self._deliver(state), name=f"notify:{d.name}")
                self.dests[d.id] = state
            else:  # changed: new sender and limits, same queue
                old = cur.sender
                cur.dest, cur.sender = d, sender
                cur.outbox.configure(**self._limits(d))
                cur.wake.set()
                await old.aclose()
        self.subs, self.tiers = subs, tiers

    async def _remove(self, dest_id: int) -> None:
        state = self.dests.pop(dest_id)
        if state.task:
            state.task.cancel()
        acks = [self._finish(dest_id, j) for j in state.outbox.drain()]
        await self.consumer.ack([a for a in acks if a])
        await state.sender.aclose()

    # --- reading the stream ------------------------------------------------------------------

    def _tier_of(self, exchange_id: int, symbol: str) -> int | None:
        return self.tiers.get((exchange_id, symbol))

    async def dispatch(self, entries: list[Entry]) -> None:
        """Queue each new entry's alert for the destinations it goes to; ack what needs nothing."""
        acks: list[str] = []
        wanted: dict[int, list[tuple[str, AlertEvent]]] = {}
        for entry_id, raw in entries:
            if entry_id in self.tracked:
                continue
            try:
                if raw is None:
                    raise ValueError("no json field")
                alert = decode_alert(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                self.stats["malformed"] += 1
                self._warn.warning("malformed", "alert stream entry %s is malformed (%s); skipped", entry_id, exc)
                acks.append(entry_id)
                continue
            targets = [d for d in route(alert, self.subs, self._tier_of) if d in self.dests]
            for d in targets:
                wanted.setdefault(d, []).append((entry_id, alert))
            self.tracked[entry_id] = 0
        for dest_id, items in wanted.items():
            done = await self.ledger.finished(dest_id, [a.id for _, a in items])
            state = self.dests[dest_id]
            for entry_id, alert in items:
                if alert.id in done or (dest_id, alert.id) in self.pairs:
                    continue
                self.pairs.add((dest_id, alert.id))
                self.tracked[entry_id] += 1
                state.outbox.push(Job(alert, entry_id))
            state.wake.set()
        for entry_id, _ in entries:
            if self.tracked.get(entry_id) == 0:
                del self.tracked[entry_id]
                acks.append(entry_id)
        await self.consumer.ack(acks)

    async def _read(self) -> None:
        after = "0-0"
        while True:  # first what this consumer name left unacknowledged (a restart under one name)
            page = await self.consumer.own_pending(after)
            if not page:
                break
            await self.dispatch(page)
            after = page[-1][0]
        last_claim = last_touch = self.clock_mono()
        self.ready.set()
        while not self._stopping:
            try:
                await self.dispatch(await self.consumer.read_new())
                now = self.clock_mono()
                if now - last_claim >= min(5.0, self.config.claim_idle_s / 2):
                    last_claim = now
                    claimed = await self.consumer.claim_abandoned()
                    self.stats["claimed"] += len(claimed)
                    await self.dispatch(claimed)
                if now - last_touch >= self.config.claim_idle_s / 3 and self.tracked:
                    last_touch = now
                    await self.consumer.touch(list(self.tracked))
            except (redis.exceptions.RedisError, OSError) as exc:
                # Redis restarting, or the stream deleted under us: wait, recreate the group, go on
                self._warn.warning("read", "reading stream:alerts failed (%s: %s); retrying", type(exc).__name__, exc)
                await asyncio.sleep(1.0)
                if "NOGROUP" in str(exc):
                    await self.consumer.ensure_group()

    @staticmethod
    def clock_mono() -> float:
        return asyncio.get_running_loop().time()

    # --- sending -----------------------------------------------------------------------------

    def _finish(self, dest_id: int, job: Job) -> str | None:
        """One job ended (sent, dead, or someone else's); the entry id if it can be acked now."""
        self.pairs.discard((dest_id, job.alert.id))
        left = self.tracked.get(job.entry_id)
        if left is None:
            return None
        if left <= 1:
            del self.tracked[job.entry_id]
            return job.entry_id
        self.tracked[job.entry_id] = left - 1
        return None

    async def _deliver(self, state: _Dest) -> None:
        while True:
            action = state.outbox.next_send(self.clock.now())
            if isinstance(action, Batch):
                task = asyncio.create_task(self._send(state, action))
                state.sends.add(task)
                task.add_done_callback(state.sends.discard)
                continue
            await self.clock.sleep_until(action, state.wake)
            state.wake.clear()

    async def _send(self, state: _Dest, batch: Batch) -> None:
        d = state.dest
        try:
            claims = await self.ledger.claim(d.id, [j.alert.id for j in batch.jobs])
            mine = [j for j, c in zip(batch.jobs, claims, strict=True) if c == 1]
            self.stats["already_done"] += claims.count(0)
            self.stats["leased_elsewhere"] += sum(1 for c in claims if c < 0)
            acks = [self._finish(d.id, j) for j, c in zip(batch.jobs, claims, strict=True) if c == 0]
            for j, c in zip(batch.jobs, claims, strict=True):
                if c < 0:  # another sender holds it: look again when its lease runs out
                    asyncio.get_running_loop().call_later(-c / 1000 + 0.05, self._requeue, d.id, j)
            if not mine:
                state.outbox.cancelled()
                await self.consumer.ack([a for a in acks if a])
                return
            alerts = [j.alert for j in mine]
            digest = batch.digest and len(mine) > 1
            chart = await self.charts.chart(alerts[0]) if state.sender.wants_chart and not digest else None
            result = await state.sender.send(alerts, digest, chart)
            ids = [a.id for a in alerts]
            if result.ok:
                state.outbox.succeeded()
                await self.ledger.mark(d.id, ids, "sent")
                await self.ledger.count(d.id, sent=len(mine), messages=1, digests=int(digest))
                acks += [self._finish(d.id, j) for j in mine]
            else:
                await self.ledger.release(d.id, ids)
                dead = state.outbox.failed(Batch(tuple(mine), digest), self.clock.now(), result.error,
                                           result.retry_after)
                await self.ledger.count(d.id, error=result.error, failed=1, dead=len(dead))
                self._warn.warning(f"send:{d.id}", "destination %s: send failed (%s)", d.name, result.error)
                for j in dead:
                    await self.ledger.mark(d.id, [j.alert.id], "dead")
                    await self.ledger.dead_letter(d.id, d.name, encode_alert(j.alert), j.alert.id, j.attempts,
                                                  j.last_error)
                    acks.append(self._finish(d.id, j))
                if dead:
                    log.warning("destination %s: %d alert(s) dead-lettered after %d failed attempts (%s)",
                                d.name, len(dead), self.config.retry.max_attempts, result.error)
            await self.consumer.ack([a for a in acks if a])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis trouble: leave the entries pending; they come back
            self._warn.warning(f"error:{d.id}", "destination %s: %s: %s", d.name, type(exc).__name__, exc)
            state.outbox.cancelled()
        finally:
            state.wake.set()

    def _requeue(self, dest_id: int, job: Job) -> None:
        state = self.dests.get(dest_id)
        if state is not None and not self._stopping:
            state.outbox.push(job)
            state.wake.set()

    # --- running -----------------------------------------------------------------------------

    async def _every(self, seconds: float, fn: Any) -> None:
        while not self._stopping:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception as exc:
                self._warn.warning(f"periodic:{fn.__name__}", "%s failed: %s: %s", fn.__name__,
                                   type(exc).__name__, exc)

    async def heartbeat(self) -> None:
        queued = dict.fromkeys(self.dests, 0)  # waiting or in flight here
        for dest_id, _ in self.pairs:
            queued[dest_id] = queued.get(dest_id, 0) + 1
        await self.ledger.heartbeat(self.config.consumer, queued)

    async def run(self, stop: asyncio.Event) -> None:
        created = await self.consumer.ensure_group()
        log.info("notify consumer %s on group %s%s", self.config.consumer, self.consumer.group,
                 " (created at the stream's end)" if created else "")
        await self.reload()
        await self.heartbeat()
        tasks = [asyncio.create_task(self._read(), name="notify:read"),
                 asyncio.create_task(self._every(self.config.reload_s, self.reload)),
                 asyncio.create_task(self._every(self.config.heartbeat_s, self.heartbeat))]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        self._stopping = True
        for t in [*tasks, stopper]:
            t.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
        await self._shutdown()
        for t in done:
            if t is not stopper and not t.cancelled():
                failure = t.exception()
                if failure is not None:
                    raise failure

    async def _shutdown(self, grace_s: float = 5.0) -> None:
        sends = [t for s in self.dests.values() for t in s.sends]
        if sends:
            await asyncio.wait(sends, timeout=grace_s)
        for s in self.dests.values():
            if s.task:
                s.task.cancel()
            for t in s.sends:
                t.cancel()
        await asyncio.gather(*[s.task for s in self.dests.values() if s.task], return_exceptions=True)
        # what is still ours goes back at once: marked idle, the next consumer takes it over
        try:
            if self.tracked:
                await self.redis.xclaim(self.consumer.stream, self.consumer.group, self.config.consumer, 0,
                                        list(self.tracked), idle=int(self.config.claim_idle_s * 1000), justid=True)
            await self.ledger.leave(self.config.consumer)
        except Exception as exc:
            log.warning("notify shutdown: %s: %s", type(exc).__name__, exc)
        for s in self.dests.values():
            await s.sender.aclose()
