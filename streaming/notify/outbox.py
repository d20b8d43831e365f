"""One destination's outbox: what to send next and when, what to retry, what to give up on.

Pure and clock-free: every call takes `now` (seconds) and the caller does the waiting and the I/O.

- Rate limit (sliding window): while the alerts waiting fit in the sends the window still allows,
  each goes alone; when more wait than that, they all go as one digest (up to `digest_max` per
  message). A storm therefore becomes a few digests inside the limit, never a queue that drains
  for minutes.
- Retries: a failed send puts its alerts back at the front; the destination waits an exponential
  backoff with jitter (or the service's Retry-After) and, while failing, sends one message at a
  time. Every alert counts the failed attempts it waited through; at `max_attempts` it is handed
  back as dead (the caller dead-letters it with the last error). A success resets the counts.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from streaming.notify.destinations import RateLimit
from streaming.notify.events import AlertEvent
from streaming.notify.ratelimit import SlidingWindow


@dataclass
class Job:
    """One alert for one destination; `entry_id` is its stream entry (acked when all its jobs end)."""

    alert: AlertEvent
    entry_id: str
    attempts: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class Batch:
    jobs: tuple[Job, ...]
    digest: bool


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError(f"invalid retry policy {self!r}: max_attempts >= 1, 0 < base_s <= cap_s")

    def delay(self, failures: int, rand: float) -> float:
        """Backoff after the n-th consecutive failure: half of min(cap, base * 2^(n-1)) plus a
        random share of the other half ("equal jitter": bounded below, spread out)."""
        d = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        return d / 2 + rand * d / 2


class Outbox:
    def __init__(self, limit: RateLimit | None, policy: RetryPolicy | None = None, concurrency: int = 1,
                 digest_max: int = 500, rng: Callable[[], float] = random.random) -> None:
        if concurrency < 1 or digest_max < 1:
            raise ValueError("concurrency and digest_max must be >= 1")
        self.window = SlidingWindow(limit.count, limit.window_s) if limit else None
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.digest_max = digest_max
        self._rng = rng
        self.queue: deque[Job] = deque()
        self.in_flight = 0
        self.failures = 0  # consecutive failed sends
        self.retry_at = 0.0

    def __len__(self) -> int:
        return len(self.queue)

    def push(self, job: Job) -> None:
        self.queue.append(job)

    def next_send(self, now: float) -> Batch | float | None:
        """A batch to send now (the send is counted against the limit), the time to ask again, or
        None when there is nothing to do until a push or a send ends."""
        if not self.queue:
            return None
        if now < self.retry_at:
            return self.retry_at
        limit = 1 if self.failures else self.concurrency  # one probe at a time while failing
        if self.in_flight >= limit:
            return None
        if self.window is None:
            jobs: tuple[Job, ...] = (self.queue.popleft(),)
            digest = False
        else:
            at = self.window.next_free(now)
            if at > now:
                return at
            if len(self.queue) > self.window.free(now):
                n = min(len(self.queue), self.digest_max)
                jobs = tuple(self.queue.popleft() for _ in range(n))
                digest = n > 1
            else:
                jobs = (self.queue.popleft(),)
                digest = False
            self.window.take(now)
        self.in_flight += 1
        return Batch(jobs, digest)

    def configure(self, limit: RateLimit | None, concurrency: int, digest_max: int) -> None:
        """New settings for a destination that changed; the queue, what is in flight and, if the
        limit is the same, the window's history are kept."""
        if concurrency < 1 or digest_max < 1:
            raise ValueError("concurrency and digest_max must be >= 1")
        current = (self.window.count, self.window.window_s) if self.window else None
        if current != ((limit.count, limit.window_s) if limit else None):
            self.window = SlidingWindow(limit.count, limit.window_s) if limit else None
        self.concurrency = concurrency
        self.digest_max = digest_max

    def cancelled(self) -> None:
        """A released batch was not sent after all (someone else had its alerts)."""
        self.in_flight -= 1

    def succeeded(self) -> None:
        self.in_flight -= 1
        self.failures = 0
        self.retry_at = 0.0
        for job in self.queue:
            job.attempts = 0

    def failed(self, batch: Batch, now: float, error: str, retry_after: float | None = None) -> list[Job]:
        """Record a failed send; returns the jobs that reached max_attempts (removed, to dead-letter)."""
        self.in_flight -= 1
        waiting = list(batch.jobs)
        if now >= self.retry_at:
            # a new failed attempt of the destination: everything waiting for it witnessed it. A
            # failure inside a backoff already counted (concurrent sends of one outage) counts
            # only for its own alerts.
            self.failures += 1
            waiting += self.queue
            self.retry_at = now + self.policy.delay(self.failures, self._rng())
        if retry_after is not None:
            self.retry_at = max(self.retry_at, now + retry_after)
        for job in waiting:
            job.attempts += 1
            job.last_error = error
        dead = [j for j in waiting if j.attempts >= self.policy.max_attempts]
        if dead:
            gone = {id(j) for j in dead}
            self.queue = deque(j for j in self.queue if id(j) not in gone)
        self.queue.extendleft(reversed([j for j in batch.jobs if j.attempts < self.policy.max_attempts]))
        return dead

    def drain(self) -> list[Job]:
        """Everything still queued (the destination was removed)."""
        jobs = list(self.queue)
        self.queue.clear()
        return jobs
