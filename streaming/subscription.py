"""Pub/sub subscriptions that survive Redis going away: reconnect, resubscribe, replay what is durable.

A Subscription iterates the messages of some channel patterns, synchronously (`for`) or with
asyncio (`async for`). When the connection drops it reconnects with exponential backoff and
subscribes again, telling `on_status` once when the connection is lost and once when it is back;
if Redis stays unreachable for `reconnect_timeout` seconds it raises RedisUnavailable.

Pub/sub itself is fire-and-forget: messages published while disconnected are gone. Alerts are
also written to the durable stream `stream:alerts`, so an alert subscription (`replay_alerts`)
reads the alerts it missed from there after a reconnect, in order and without duplicates.
Candle-close events have no stream: after a reconnect the closed candles are in the
`candles:{exchange}:{symbol}:{tf}` sorted sets (see docs/keyspace.md).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from streaming import keys
from streaming.defaults import DEFAULT_RECONNECT_TIMEOUT_S
from streaming.redis_clients import async_client, sync_client

REPLAY_BATCH = 1000
REPLAY_MAX = 100_000  # the stream's own length bound (alerts.publish.STREAM_MAXLEN)
_LOST = (redis.ConnectionError, redis.TimeoutError, OSError)


class RedisUnavailable(ConnectionError):
    """Redis stayed unreachable for longer than the reconnect timeout."""


@dataclass(frozen=True)
class Received:
    channel: str
    raw: str
    data: dict[str, Any] | None  # None when the payload is not a JSON object


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _decode(channel: Any, payload: Any) -> Received:
    raw = _text(payload)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: a payload nested too deep
        data = None
    if isinstance(data, dict):
        data.setdefault("_channel", _text(channel))
        return Received(_text(channel), raw, data)
    return Received(_text(channel), raw, None)


def _reason(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120] or type(exc).__name__


@dataclass
class _Outage:
    """Bookkeeping of one loss of connection: backoff, the status lines, when to give up."""

    timeout: float
    on_status: Callable[[str], None] | None
    since: float | None = None
    attempt: int = 0

    def lost(self, exc: BaseException) -> float:
        """Seconds to wait before the next attempt; RedisUnavailable once the timeout has passed."""
        now = time.monotonic()
        if self.since is None:
            self.since, self.attempt = now, 0
            self._say(f"lost the connection to Redis ({_reason(exc)}); reconnecting for up to {self.timeout:g}s")
        elapsed = now - self.since
        if elapsed >= self.timeout:
            raise RedisUnavailable(f"Redis has been unreachable for {elapsed:.0f}s ({_reason(exc)}); giving up")
        self.attempt += 1
        delay = min(5.0, 0.2 * 2 ** min(self.attempt, 10)) * random.uniform(0.5, 1.0)
        return min(delay, max(0.05, self.timeout - elapsed))

    def connected(self, replayed: int) -> None:
        if self.since is not None:
            note = f"; {replayed} alert(s) published meanwhile read from {keys.ALERTS_STREAM}" if replayed else ""
            self._say(f"reconnected to Redis after {time.monotonic() - self.since:.0f}s{note}")
        self.since = None

    def _say(self, line: str) -> None:
        if self.on_status is not None:
            self.on_status(line)


@dataclass
class _AlertReplay:
    """Alerts of `exchange_ids` (None: all) in the stream after `cursor`, each yielded once."""

    exchange_ids: list[int] | None
    cursor: str | None = None  # stream id up to which every alert was seen (None: not connected yet)
    seen: set[str] = field(default_factory=set)

    def start(self, last_id: str | None) -> None:
        self.cursor = last_id or "0-0"

    def wanted(self, entries: list[Any]) -> list[Received]:
        out = []
        for entry_id, fields in entries:
            self.cursor = _text(entry_id)
            raw = fields.get("json", fields.get(b"json")) if isinstance(fields, dict) else None
            if raw is None:
                continue
            msg = _decode(keys.ALERTS_STREAM, raw)
            if msg.data is None or not self.first_time(msg):
                continue
            ex = msg.data.get("source_exchange_id")
            if self.exchange_ids is None or ex in self.exchange_ids:
                out.append(msg)
        return out

    def first_time(self, msg: Received) -> bool:
        alert_id = msg.data.get("id") if msg.data else None
        if not isinstance(alert_id, str):
            return True
        if alert_id in self.seen:
            return False
        if len(self.seen) >= REPLAY_MAX:
            self.seen.clear()  # a bound on memory; ids older than the cursor are no longer needed
        self.seen.add(alert_id)
        return True


def _last_id(entries: list[Any]) -> str | None:
    return _text(entries[0][0]) if entries else None


class Subscription:
    """Messages of channel `patterns`; iterate for dicts (`for`, `async for`) or `messages()` for Received."""

    def __init__(self, url: str, patterns: list[str], timeout: float | None = None, *,
                 reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S,
                 on_status: Callable[[str], None] | None = None,
                 replay_alerts: bool = False, exchange_ids: list[int] | None = None,
                 channels: list[str] | None = None) -> None:
        self.url = url
        self.patterns = patterns  # PSUBSCRIBEd
        self.channels = channels or []  # exact names, SUBSCRIBEd
        self.timeout = timeout  # stop iterating after this many seconds without a message
        self.reconnect_timeout = reconnect_timeout
        self.on_status = on_status
        self.skipped = 0  # payloads that are not JSON objects (the dict iterators skip them)
        self._replay = _AlertReplay(exchange_ids) if replay_alerts else None

    def _subscribe(self, pubsub: Any) -> None:
        if self.channels:
            pubsub.subscribe(*self.channels)
        if self.patterns:
            pubsub.psubscribe(*self.patterns)

    async def _asubscribe(self, pubsub: Any) -> None:
        if self.channels:
            await pubsub.subscribe(*self.channels)
        if self.patterns:
            await pubsub.psubscribe(*self.patterns)

    def _poll_s(self) -> float:
        return 1.0 if self.timeout is None else min(1.0, self.timeout)

    def _idle_over(self, since: float) -> bool:
        return self.timeout is not None and time.monotonic() - since >= self.timeout

    def _pending(self, received: Received) -> bool:
        """True when `received` should be yielded (an alert already replayed is not)."""
        return self._replay is None or received.data is None or self._replay.first_time(received)

    def messages(self) -> Generator[Received, None, None]:
        outage = _Outage(self.reconnect_timeout, self.on_status)
        idle_since = time.monotonic()
        while True:
            client = sync_client(self.url, decode=False, retries=0)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                self._subscribe(pubsub)
                replayed = list(self._catch_up(client))
                outage.connected(len(replayed))
                yield from replayed
                while True:
                    msg = pubsub.get_message(timeout=self._poll_s())
                    if msg and msg.get("type") in ("pmessage", "message"):
                        received = _decode(msg["channel"], msg["data"])
                        if self._pending(received):
                            idle_since = time.monotonic()
                            yield received
                    elif self._idle_over(idle_since):
                        return
            except _LOST as exc:
                time.sleep(outage.lost(exc))
            finally:
                pubsub.close()
                client.close()

    def _catch_up(self, client: redis.Redis) -> Iterator[Received]:
        if self._replay is None:
            return
        if self._replay.cursor is None:  # first connection: start from the stream's end
            latest: Any = client.xrevrange(keys.ALERTS_STREAM, count=1)
            self._replay.start(_last_id(latest))
            return
        for _ in range(REPLAY_MAX // REPLAY_BATCH):
            entries: Any = client.xrange(keys.ALERTS_STREAM, min=f"({self._replay.cursor}", count=REPLAY_BATCH)
            yield from self._replay.wanted(entries)
            if len(entries) < REPLAY_BATCH:
                return

    async def amessages(self) -> AsyncGenerator[Received, None]:
        import asyncio

        outage = _Outage(self.reconnect_timeout, self.on_status)
        idle_since = time.monotonic()
        while True:
            client = async_client(self.url, decode=False, retries=0)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await self._asubscribe(pubsub)
                replayed = await self._acatch_up(client)
                outage.connected(len(replayed))
                for received in replayed:
                    yield received
                while True:
                    msg = await pubsub.get_message(timeout=self._poll_s())
                    if msg and msg.get("type") in ("pmessage", "message"):
                        received = _decode(msg["channel"], msg["data"])
                        if self._pending(received):
                            idle_since = time.monotonic()
                            yield received
                    elif self._idle_over(idle_since):
                        return
            except _LOST as exc:
                await asyncio.sleep(outage.lost(exc))
            finally:
                await pubsub.aclose()
                await client.aclose()

    async def _acatch_up(self, client: Any) -> list[Received]:
        if self._replay is None:
            return []
        if self._replay.cursor is None:
            self._replay.start(_last_id(await client.xrevrange(keys.ALERTS_STREAM, count=1)))
            return []
        out: list[Received] = []
        for _ in range(REPLAY_MAX // REPLAY_BATCH):
            entries: Any = await client.xrange(keys.ALERTS_STREAM, min=f"({self._replay.cursor}", count=REPLAY_BATCH)
            out += self._replay.wanted(entries)
            if len(entries) < REPLAY_BATCH:
                break
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with contextlib.closing(self.messages()) as messages:  # closing this closes the connection
            for received in messages:
                if received.data is None:
                    self.skipped += 1
                else:
                    yield received.data

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.aclosing(self.amessages()) as messages:
            async for received in messages:
                if received.data is None:
                    self.skipped += 1
                else:
                    yield received.data
