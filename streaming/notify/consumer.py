"""The delivery service's side of stream:alerts: one Redis consumer group, `notify`.

The group is created at `$` (with MKSTREAM): the first start delivers alerts published from then
on, not the up-to-100,000 the stream already holds; from then on the group remembers its place,
so alerts published while every notify process is down are delivered when one comes back.
An entry is acknowledged only when every destination it goes to has it sent or dead-lettered.
Entries pending on a consumer that stopped (idle longer than `claim_idle_ms`; live consumers
touch theirs) are taken over with XAUTOCLAIM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.exceptions

from streaming import keys
from streaming.redis_text import as_str

Entry = tuple[str, bytes | None]  # (stream id, the alert JSON; None if the entry has no json field)


def _entries(raw: Any) -> list[Entry]:
    out = []
    for item in raw or []:
        if not item:  # XAUTOCLAIM on Redis 6.2 returns nil for entries trimmed away
            continue
        entry_id, fields = item
        fields = fields or {}
        value = fields.get(b"json", fields.get("json"))
        out.append((as_str(entry_id), value.encode() if isinstance(value, str) else value))
    return out


class AlertConsumer:
    def __init__(self, redis: Any, consumer: str, count: int = 256, block_ms: int = 1000,
                 claim_idle_ms: int = 60_000, stream: str = keys.ALERTS_STREAM, group: str = keys.NOTIFY_GROUP) -> None:
        self.redis = redis
        self.consumer = consumer
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.stream = stream
        self.group = group
        self._claim_cursor = "0-0"

    async def ensure_group(self) -> bool:
        """Create the group at `$` if it does not exist; True if this call created it."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id="$", mkstream=True)
            return True
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise

    async def own_pending(self, after: str = "0-0") -> list[Entry]:
        """This consumer's delivered-but-unacknowledged entries after `after` (a restart with the
        same consumer name picks up where it stopped)."""
        res = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: after}, count=self.count)
        return _entries(res[0][1]) if res else []

    async def read_new(self) -> list[Entry]:
        res = await self.redis.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.count,
                                          block=self.block_ms)
        return _entries(res[0][1]) if res else []

    async def claim_abandoned(self) -> list[Entry]:
        """Entries idle longer than claim_idle_ms on any consumer, now ours (one XAUTOCLAIM page)."""
        res = await self.redis.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms,
                                          start_id=self._claim_cursor, count=self.count)
        cursor, claimed = as_str(res[0]), res[1]
        self._claim_cursor = cursor
        return _entries(claimed)

    async def touch(self, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of entries we are still working on, so no one takes them over."""
        for i in range(0, len(entry_ids), 500):
            await self.redis.xclaim(self.stream, self.group, self.consumer, 0, list(entry_ids[i:i + 500]),
                                    justid=True)

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self.redis.xack(self.stream, self.group, *entry_ids)

    async def pending_count(self) -> int:
        info = await self.redis.xpending(self.stream, self.group)
        return int(info["pending"]) if info else 0
