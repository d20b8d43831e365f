"""Which streams of a live connection went quiet: per (symbol, timeframe), the time of its last frame.

A connection can stay up while one of its streams stops (the exchange stalls one product, or
drops a subscription without a word); the connection's own watchdog never notices. A stream is
stale when no frame of it arrived for `cadence_s` (how often the exchange sends a stream's
frames) plus `threshold_s`. Time while the stream's connection was down does not count: the
adapter `touch`es the streams of a connection when it opens, and while it is down.

Pure: the adapter feeds frames and calls `check` now and then (with an injected
clock); `check` says which streams just went stale, which recovered (a frame arrived since they
went stale), and which to resubscribe: at once when it goes stale, then again after
threshold_s, 2 x threshold_s, ... (at most MAX_RESUBSCRIBE_S apart) while it stays stale.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Key = tuple[str, str]  # (symbol, timeframe)

MAX_RESUBSCRIBE_S = 3600.0


@dataclass
class _Stale:
    since: float  # when it was found stale
    next_resubscribe: float
    resubscribes: int = 1


@dataclass(frozen=True)
class StaleChanges:
    """What one `check` found (each list sorted)."""

    stale: list[Key] = field(default_factory=list)
    recovered: list[Key] = field(default_factory=list)
    resubscribe: list[Key] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.stale or self.recovered or self.resubscribe)


class StaleTracker:
    def __init__(self, threshold_s: float, cadence_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not threshold_s > 0:
            raise ValueError(f"threshold_s must be positive, got {threshold_s!r}")
        if not cadence_s >= 0:
            raise ValueError(f"cadence_s must not be negative, got {cadence_s!r}")
        self.threshold_s = float(threshold_s)
        self.cadence_s = float(cadence_s)
        self.clock = clock
        self.last_frame: dict[Key, float] = {}
        self._stale: dict[Key, _Stale] = {}
        self.counts = {"stale": 0, "recovered": 0, "resubscribes": 0}

    @property
    def limit_s(self) -> float:
        """Seconds without a frame after which a stream is stale."""
        return self.cadence_s + self.threshold_s

    # -- fed by the adapter
    def watch(self, keys: Iterable[Key]) -> None:
        """Start watching these streams (as if a frame arrived now); watched ones are left as they are."""
        now = self.clock()
        for key in keys:
            self.last_frame.setdefault(key, now)

    def forget(self, keys: Iterable[Key]) -> None:
        """Stop watching (unsubscribed): a stale stream that leaves is neither stale nor recovered."""
        for key in keys:
            self.last_frame.pop(key, None)
            self._stale.pop(key, None)

    def touch(self, keys: Iterable[Key]) -> None:
        """The streams' connection (re)opened or is down: their silence so far does not count.
        Stale streams stay stale until a frame of theirs arrives."""
        now = self.clock()
        last = self.last_frame
        stale = self._stale
        for key in keys:
            if key in last and key not in stale:
                last[key] = now

    def frame(self, key: Key) -> None:
        """A frame of a watched stream arrived (hot path: one clock read, one store)."""
        if key in self.last_frame:
            self.last_frame[key] = self.clock()

    # -- read by the adapter
    def check(self) -> StaleChanges:
        now = self.clock()
        limit = self.limit_s
        changes = StaleChanges()
        for key, last in self.last_frame.items():
            entry = self._stale.get(key)
            if entry is None:
                if now - last > limit:
                    self._stale[key] = _Stale(now, now + self.threshold_s)
                    changes.stale.append(key)
                    changes.resubscribe.append(key)
            elif last >= entry.since:
                del self._stale[key]
                changes.recovered.append(key)
            elif now >= entry.next_resubscribe:
                entry.resubscribes += 1
                wait = min(MAX_RESUBSCRIBE_S, self.threshold_s * 2 ** (entry.resubscribes - 1))
                entry.next_resubscribe = now + wait
                changes.resubscribe.append(key)
        self.counts["stale"] += len(changes.stale)
        self.counts["recovered"] += len(changes.recovered)
        self.counts["resubscribes"] += len(changes.resubscribe)
        for names in (changes.stale, changes.recovered, changes.resubscribe):
            names.sort()
        return changes

    def stale(self) -> list[Key]:
        """The streams stale now, sorted."""
        return sorted(self._stale)

    def silent_s(self, key: Key) -> float | None:
        """Seconds since the stream's last frame (None when not watched)."""
        last = self.last_frame.get(key)
        return None if last is None else max(0.0, self.clock() - last)

    def __len__(self) -> int:
        return len(self.last_frame)


def stream_label(key: Key) -> str:
    """`SYMBOL:timeframe`, as the stats snapshot lists stale streams."""
    return f"{key[0]}:{key[1]}"


def report(changes: StaleChanges, tracker: StaleTracker, hook: Callable[[str, str, bool, str], None]) -> None:
    """Hand what a `check` found to `hook(symbol, timeframe, stale, detail)`."""
    for key in changes.stale:
        hook(key[0], key[1], True, f"no frame of {key[0]} {key[1]} for over {tracker.limit_s:g}s "
                                   f"({tracker.threshold_s:g}s past its {tracker.cadence_s:g}s cadence); resubscribing")
    for key in changes.recovered:
        hook(key[0], key[1], False, f"frames of {key[0]} {key[1]} arrive again")
