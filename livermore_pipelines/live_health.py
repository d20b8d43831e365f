"""What Dagster says about an exchange's live candles (pure): one reading of the workers' stats.

The workers write cumulative counters (streaming.contracts.stats.ExchangeStats); the observation
sensor keeps the previous reading of each worker in its cursor and reports the difference, so an
observation says what happened in the interval since the last one. A reading with another
`since` than the remembered one is a restarted worker: its counters start again from zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from streaming.contracts.stats import ExchangeStats
from streaming.timestamps import parse_utc_iso

RUNNING_STATES = frozenset({"connected", "connecting"})
# A 5m bar closes every five minutes: three missed closes in a row is no longer a slow market.
FRESH_WINDOW = timedelta(minutes=15)
COUNTERS = ("frames", "rest_requests", "rest_429", "reconnects", "malformed_frames", "skipped_frames", "corrections")
STALE_SHOWN = 50

# states of an exchange's live candles, as the observation reports them
LIVE, DEGRADED, DOWN, STOPPED = "live", "degraded", "down", "stopped"


@dataclass(frozen=True)
class Reading:
    """The counters of one worker's stats, as remembered in the sensor cursor."""

    since: str
    closes: dict[str, int]
    counters: dict[str, int]

    @classmethod
    def of(cls, stats: ExchangeStats) -> Reading:
        return cls(since=stats.since, closes=dict(stats.closes),
                   counters={name: int(getattr(stats, name)) for name in COUNTERS})

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since, "closes": self.closes, "counters": self.counters}

    @classmethod
    def from_json(cls, data: Any) -> Reading | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("since"), str):
            return None
        closes, counters = data.get("closes"), data.get("counters")
        if not isinstance(closes, Mapping) or not isinstance(counters, Mapping):
            return None
        return cls(since=data["since"], closes={str(k): int(v) for k, v in closes.items() if isinstance(v, int)},
                   counters={str(k): int(v) for k, v in counters.items() if isinstance(v, int)})


def _minus(now: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    # a counter never goes down within one `since`; max() keeps a hand-edited hash from going negative
    return {k: max(0, v - int(before.get(k, 0))) for k, v in now.items()}


def interval_delta(stats: ExchangeStats, previous: Reading | None) -> tuple[dict[str, int], dict[str, int]]:
    """(closes by timeframe, counters) since `previous`, or since the worker started when it restarted."""
    current = Reading.of(stats)
    if previous is None or previous.since != current.since:
        return dict(current.closes), dict(current.counters)
    return _minus(current.closes, previous.closes), _minus(current.counters, previous.counters)


@dataclass(frozen=True)
class LiveHealth:
    """One exchange at one sensor tick: what the observation, the materialization and the checks say."""

    exchange: str
    state: str
    should_run: bool
    workers: list[str]
    streams: int
    stale: list[str]
    closes: dict[str, int]
    counters: dict[str, int]
    close_lag_ms_p50: float | None
    close_lag_ms_p99: float | None
    last_close_at: str | None
    fresh: bool
    readings: dict[str, Reading] = field(default_factory=dict)

    @property
    def new_closes(self) -> int:
        return sum(self.closes.values())

    def metadata(self) -> dict[str, Any]:
        """Observation metadata: flat numbers the UI plots, plus the stale streams by name."""
        out: dict[str, Any] = {
            "state": self.state,
            "should_run": self.should_run,
            "workers": len(self.workers),
            "streams": self.streams,
            "streams_live": max(0, self.streams - len(self.stale)),
            "streams_stale": len(self.stale),
        }
        for tf, n in sorted(self.closes.items()):
            out[f"closes_{tf}"] = n
        out["close_lag_ms_p50"] = self.close_lag_ms_p50
        out["close_lag_ms_p99"] = self.close_lag_ms_p99
        out.update(self.counters)
        out["last_close_at"] = self.last_close_at
        shown = self.stale[:STALE_SHOWN]
        more = len(self.stale) - len(shown)
        out["stale"] = ", ".join(shown) + (f" (+{more} more)" if more > 0 else "") if shown else "none"
        return out


def assess(exchange: str, status_state: str | None, live_worker_ids: Sequence[str],
           stats: Mapping[str, ExchangeStats], previous: Mapping[str, Reading], last_close_at: str | None,
           now: datetime) -> LiveHealth:
    """The health of one exchange from its status, the live workers serving it and their stats.

    `live_worker_ids`: workers with a fresh heartbeat that list this exchange. Stats of any other
    worker are left out (a worker killed hard leaves its last stats behind). `last_close_at`: when
    a previous tick last saw closes (on demand: the last materialization); `now` is when this tick
    runs. Closes counted against a `previous` reading of the same run happened since that tick, so
    now; a worker's totals without one only say that its closes came after its start.
    """
    should_run = status_state in RUNNING_STATES
    serving = sorted(w for w in live_worker_ids if w in stats)
    closes: dict[str, int] = {}
    counters = dict.fromkeys(COUNTERS, 0)
    stale: list[str] = []
    streams = 0
    lags50: list[float] = []
    lags99: list[float] = []
    readings: dict[str, Reading] = {}
    seen: list[datetime] = []  # when closes certainly happened (at or after)
    for worker in serving:
        s = stats[worker]
        before = previous.get(worker)
        d_closes, d_counters = interval_delta(s, before)
        if sum(d_closes.values()) > 0:
            # against a reading of the same run the closes came since the last tick: now; without
            # one they are the worker's totals, and all that is known is that they came after its start
            since = parse_utc_iso(s.since) if before is None or before.since != s.since else now
            if since is not None:
                seen.append(min(since, now))
        for tf, n in d_closes.items():
            closes[tf] = closes.get(tf, 0) + n
        for name, n in d_counters.items():
            counters[name] = counters.get(name, 0) + n
        streams += s.streams
        stale += s.stale
        if s.close_lag_ms_p50 is not None:
            lags50.append(s.close_lag_ms_p50)
        if s.close_lag_ms_p99 is not None:
            lags99.append(s.close_lag_ms_p99)
        readings[worker] = Reading.of(s)
    known = parse_utc_iso(last_close_at)
    if seen and (known is None or max(seen) > known):
        last_close_at = max(seen).isoformat()
    if not live_worker_ids:
        state = DOWN if should_run else STOPPED
    elif stale:
        state = DEGRADED
    else:
        state = LIVE
    last = parse_utc_iso(last_close_at)
    starts = [t for t in (parse_utc_iso(stats[w].since) for w in serving) if t is not None]
    # before the first close a worker gets one window to produce it (a 5m bar may be 5 min away)
    fresh = (now - last <= FRESH_WINDOW) if last is not None else bool(starts) and now - min(starts) <= FRESH_WINDOW
    return LiveHealth(
        exchange=exchange, state=state, should_run=should_run, workers=sorted(live_worker_ids), streams=streams,
        stale=sorted(set(stale)), closes=closes, counters=counters,
        # the worst worker decides: an operator looks for the slowest path
        close_lag_ms_p50=max(lags50) if lags50 else None, close_lag_ms_p99=max(lags99) if lags99 else None,
        last_close_at=last_close_at, fresh=fresh, readings=readings,
    )


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: str  # "WARN" or "ERROR": how bad a failure is
    description: str


def checks(health: LiveHealth) -> list[CheckOutcome]:
    """The live checks of an exchange: streams live (WARN), a worker streams it (ERROR), fresh (WARN)."""
    n_stale = len(health.stale)
    streams = CheckOutcome(
        "streams_live", passed=n_stale == 0, severity="WARN",
        description=(f"{health.exchange} is stopped: no streams expected" if health.state == STOPPED else
                     f"all {health.streams} streams live" if n_stale == 0 else
                     f"{n_stale} of {health.streams} streams stale: {', '.join(health.stale[:10])}"
                     + (" ..." if n_stale > 10 else "")))
    if health.should_run and not health.workers:
        alive = CheckOutcome("worker_alive", False, "ERROR",
                             f"{health.exchange} should stream but no live worker streams it (worker dead?): "
                             "worker_health_sensor requests a start_streaming run")
    elif health.workers:
        alive = CheckOutcome("worker_alive", True, "ERROR",
                             f"streamed by {', '.join(health.workers)}")
    else:
        alive = CheckOutcome("worker_alive", True, "ERROR", f"{health.exchange} is stopped: nothing should stream")
    window_min = int(FRESH_WINDOW.total_seconds() // 60)
    if health.state == STOPPED:
        fresh = CheckOutcome("fresh", True, "WARN", f"{health.exchange} is stopped: no closes expected")
    else:
        fresh = CheckOutcome(
            "fresh", passed=health.fresh, severity="WARN",
            description=(f"closes published within the last {window_min} min (last seen {health.last_close_at})"
                         if health.fresh and health.last_close_at else
                         f"no close yet; the worker started less than {window_min} min ago" if health.fresh else
                         f"no close published within the last {window_min} min "
                         f"(last seen {health.last_close_at or 'never'})"))
    return [streams, alive, fresh]
