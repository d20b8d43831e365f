"""Delivery state in Redis: who sends what (leases), what was sent or given up, the counters of
each destination, the dead-letter stream and the consumers' heartbeats.

Never twice: before a send, each (destination, alert) key is set to `sending:{owner}` with SET NX
and a lease (PX); after the send it becomes `sent` (or `dead`) for 7 days. A second process, a
re-delivered stream entry or a restart finds the key and does not send. A process that dies
mid-send leaves a lease that expires, and the alert is retried then: a crash between the
destination accepting a message and the `sent` mark is the one window for a repeat, which is why
webhooks carry the alert id in X-Livermore-Delivery.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from streaming import keys
from streaming.redis_text import as_str

DONE_TTL_S = 7 * 86_400
HEARTBEAT_STALE_S = 15.0

# KEYS: delivery keys. ARGV: lease value, lease ms. Per key: 1 leased now, 0 already sent/dead,
# else -(ms left on someone else's lease) (at most -1).
_CLAIM = """
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[i] = 1
  else
    local v = redis.call('GET', k)
    if v and string.sub(v, 1, 8) == 'sending:' then
      out[i] = -math.max(1, redis.call('PTTL', k))
    else
      out[i] = 0
    end
  end
end
return out
"""

# KEYS: delivery keys. ARGV: our lease value. Deletes only our own leases.
_RELEASE = """
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then n = n + redis.call('DEL', k) end
end
return n
"""


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Ledger:
    def __init__(self, redis: Any, owner: str, lease_s: float = 30.0) -> None:
        self.redis = redis
        self.lease = f"sending:{owner}"
        self.lease_ms = max(1, int(lease_s * 1000))
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    async def claim(self, destination_id: int, alert_ids: Sequence[str]) -> list[int]:
        """Per alert: 1 = ours to send now, 0 = already sent or dead, < 0 = leased by another
        sender for that many more ms."""
        if not alert_ids:
            return []
        ks = [keys.notify_delivery(destination_id, a) for a in alert_ids]
        return [int(x) for x in await self._claim(keys=ks, args=[self.lease, self.lease_ms])]

    async def finished(self, destination_id: int, alert_ids: Sequence[str]) -> set[str]:
        """The alerts already sent or dead for this destination (leases do not count)."""
        if not alert_ids:
            return set()
        values = await self.redis.mget([keys.notify_delivery(destination_id, a) for a in alert_ids])
        return {a for a, v in zip(alert_ids, values, strict=True) if v is not None and as_str(v) in ("sent", "dead")}

    async def mark(self, destination_id: int, alert_ids: Sequence[str], state: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for a in alert_ids:
            pipe.set(keys.notify_delivery(destination_id, a), state, ex=DONE_TTL_S)
        await pipe.execute()

    async def release(self, destination_id: int, alert_ids: Sequence[str]) -> None:
        """Give our leases back after a failed send, so a restart may retry at once."""
        if alert_ids:
            await self._release(keys=[keys.notify_delivery(destination_id, a) for a in alert_ids], args=[self.lease])

    async def count(self, destination_id: int, error: str | None = None, **counters: int) -> None:
        """HINCRBY the counters (sent, messages, digests, failed, dead) and note the time of the
        last send or the last error."""
        key = keys.notify_status(destination_id)
        pipe = self.redis.pipeline(transaction=False)
        for field, n in counters.items():
            if n:
                pipe.hincrby(key, field, n)
        now = _now_iso()
        if error is not None:
            pipe.hset(key, mapping={"last_error": error, "last_error_at": now})
        if counters.get("messages"):
            pipe.hset(key, "last_sent_at", now)
        await pipe.execute()

    async def dead_letter(self, destination_id: int, destination: str, alert_json: bytes, alert_id: str,
                          attempts: int, reason: str) -> None:
        record = {"alert_id": alert_id, "destination_id": destination_id, "destination": destination,
                  "attempts": attempts, "reason": reason, "failed_at": _now_iso(),
                  "alert": json.loads(alert_json)}
        await self.redis.xadd(keys.NOTIFY_DEAD_STREAM, {"json": json.dumps(record, separators=(",", ":"))},
                              maxlen=keys.NOTIFY_DEAD_MAXLEN, approximate=True)

    async def heartbeat(self, consumer: str, queued: Mapping[int, int]) -> None:
        beat = {"consumer": consumer, "host": socket.gethostname(), "pid": os.getpid(), "at": _now_iso(),
                "queued": {str(k): v for k, v in queued.items()}}
        await self.redis.hset(keys.NOTIFY_CONSUMERS, consumer, json.dumps(beat))

    async def leave(self, consumer: str) -> None:
        await self.redis.hdel(keys.NOTIFY_CONSUMERS, consumer)


# --- reading it back (the status command; synchronous redis-py) ---------------------------------

def read_status(redis: Any, destination_ids: Sequence[int], now: datetime | None = None) -> dict[int, dict]:
    """destination id -> {sent, messages, digests, failed, dead, queued, last_error, ...}; queued sums
    the live consumers' queues."""
    now = now or datetime.now(UTC)
    queued: dict[int, int] = {}
    for raw in redis.hgetall(keys.NOTIFY_CONSUMERS).values():
        try:
            beat = json.loads(raw)
            age = (now - datetime.fromisoformat(beat["at"])).total_seconds()
            if age > HEARTBEAT_STALE_S:
                continue
            for k, v in beat.get("queued", {}).items():
                queued[int(k)] = queued.get(int(k), 0) + int(v)
        except (ValueError, KeyError, TypeError):
            continue
    out = {}
    for d in destination_ids:
        h = {as_str(k): as_str(v) for k, v in redis.hgetall(keys.notify_status(d)).items()}
        row: dict[str, Any] = {f: int(h.get(f, 0)) for f in ("sent", "messages", "digests", "failed", "dead")}
        row.update(queued=queued.get(d, 0), last_error=h.get("last_error"), last_error_at=h.get("last_error_at"),
                   last_sent_at=h.get("last_sent_at"))
        out[d] = row
    return out


def live_consumers(redis: Any, now: datetime | None = None) -> list[dict]:
    now = now or datetime.now(UTC)
    out = []
    for raw in redis.hgetall(keys.NOTIFY_CONSUMERS).values():
        try:
            beat = json.loads(raw)
            if (now - datetime.fromisoformat(beat["at"])).total_seconds() <= HEARTBEAT_STALE_S:
                out.append(beat)
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda b: b["consumer"])
