"""What a worker measured about each exchange it streams: one reading, two outlets.

The counters live where the work happens, as plain ints: the live stream (frames, reconnects,
skipped frames by kind, stale streams), the adapter's HTTP clients (REST requests and 429s by
endpoint), the pipeline (corrections) and its CloseMeter (closes by timeframe, close lag, close
script time). `ExchangeMeasure.read` gathers them into a Reading; the stats snapshot
(ExchangeStats, streaming.worker.stats_writer) and Prometheus /metrics (streaming.worker.metrics)
are both made from Readings, so the two never disagree.

Counters are cumulative since the worker started: when a live stream is replaced (restarted) or
an exchange's session ends, what its parts counted is carried over (`retire`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streaming.contracts.stats import ExchangeStats
from streaming.timeframes import TIMEFRAMES

if TYPE_CHECKING:  # the idle worker does not import the pipeline: only a started exchange does
    from streaming.pipeline.close_meter import CloseMeter

# frames that parsed but were not for us or out of bounds (streaming.adapters.skips: UNKNOWN_SYMBOL,
# UNKNOWN_INTERVAL, BAD_TIMESTAMP, EXCHANGE_ERROR; a test keeps them equal); every other kind is malformed
SKIPPED_KINDS = frozenset({"unknown_symbol", "unknown_interval", "bad_timestamp", "exchange_error"})


def _close_meter() -> CloseMeter:
    from streaming.pipeline.close_meter import CloseMeter

    return CloseMeter()

CounterKey = tuple[str, ...]  # ("frames",), ("rest_requests", endpoint), ("malformed", kind), ...


@dataclass
class Reading:
    exchange: str
    exchange_id: int
    streams: int = 0
    stale: list[str] = field(default_factory=list)
    history_missing: int = 0
    counts: Counter[CounterKey] = field(default_factory=Counter)
    closes: CloseMeter = field(default_factory=_close_meter)

    def total(self, name: str) -> int:
        return sum(v for k, v in self.counts.items() if k[0] == name)

    def by(self, name: str) -> dict[str, int]:
        return {k[1]: v for k, v in sorted(self.counts.items()) if k[0] == name and len(k) == 2}


def stream_counts(stream: Any) -> Counter[CounterKey]:
    """A live stream's counters (its stats())."""
    out: Counter[CounterKey] = Counter()
    if stream is None:
        return out
    try:
        stats = stream.stats()
    except Exception:
        return out
    for name in ("frames", "reconnects", "streams_stale", "streams_recovered", "streams_resubscribes"):
        value = stats.get(name)
        if isinstance(value, int) and value:
            out[(name,)] += value
    skipped = stats.get("skipped")
    if isinstance(skipped, Mapping):
        for kind, n in skipped.items():
            if isinstance(n, int) and n:
                out[("skipped" if kind in SKIPPED_KINDS else "malformed", str(kind))] += n
    return out


def adapter_counts(adapter: Any) -> Counter[CounterKey]:
    """REST requests and 429s by endpoint, from every HTTP client of the adapter."""
    out: Counter[CounterKey] = Counter()
    rest = getattr(adapter, "rest", None)
    for client in _http_clients(rest):
        for endpoint, (requests, limited) in list(client.by_endpoint.items()):
            if requests:
                out[("rest_requests", endpoint)] += requests
            if limited:
                out[("rest_429", endpoint)] += limited
    return out


def _http_clients(rest: Any) -> Iterable[Any]:
    from streaming.adapters.http import HttpClient

    if rest is None:
        return []
    return [v for v in vars(rest).values() if isinstance(v, HttpClient)]


def pipeline_counts(pipeline: Any) -> Counter[CounterKey]:
    out: Counter[CounterKey] = Counter()
    counters = getattr(pipeline, "counters", None)
    if not isinstance(counters, Mapping):
        return out
    corrections = int(counters.get("corrections", 0)) + int(counters.get("aggregate_corrections", 0))
    if corrections:
        out[("corrections",)] = corrections
    for name, n in list(counters.items()):
        if name.startswith("skipped_") and n:
            out[("skipped", f"pipeline_{name.removeprefix('skipped_')}")] += int(n)
    return out


class ExchangeMeasure:
    """One exchange's counters on this worker, for as long as the worker runs."""

    def __init__(self, exchange: str, exchange_id: int) -> None:
        self.exchange = exchange
        self.exchange_id = exchange_id
        self.closes = _close_meter()  # handed to each pipeline of the exchange
        self.carry: Counter[CounterKey] = Counter()
        self.session: Any = None  # the exchange's session while it runs (its parts count live)

    def retire(self, *, stream: Any = None, adapter: Any = None, pipeline: Any = None, session: Any = None) -> None:
        """Keep what these parts counted: they are about to be replaced or dropped. With `session`
        (the session ends) its parts are no longer read live, in the same step: no reading counts
        them twice or not at all."""
        self.carry.update(stream_counts(stream))
        self.carry.update(adapter_counts(adapter))
        self.carry.update(pipeline_counts(pipeline))
        if session is not None and self.session is session:
            self.session = None

    def read(self) -> Reading:
        """The counters now: what was carried plus the live parts of the running session."""
        counts = Counter(self.carry)
        reading = Reading(self.exchange, self.exchange_id, counts=counts, closes=self.closes)
        session = self.session
        if session is None:
            return reading
        counts.update(stream_counts(session.stream))
        counts.update(adapter_counts(session.adapter))
        counts.update(pipeline_counts(session.pipeline))
        reading.history_missing = session.pipeline.history.missing if session.pipeline is not None else 0
        accepted = set(session.pools) - session.refused.keys()
        reading.streams = len(accepted) * len(TIMEFRAMES)
        if session.stream is not None:
            try:
                reading.stale = sorted(f"{sym}:{tf}" for sym, tf in session.stream.stale_streams())
            except Exception:
                reading.stale = []
        return reading


def exchange_stats(reading: Reading, worker_id: str, since: str, now: str) -> ExchangeStats:
    """The stats snapshot of one reading (streaming.contracts.stats)."""
    p50, p99 = reading.closes.lag_percentiles()
    return ExchangeStats(
        worker_id=worker_id, since=since, written_at=now, streams=reading.streams, stale=reading.stale,
        frames=reading.total("frames"), closes=dict(sorted(reading.closes.closes.items())),
        close_lag_ms_p50=p50, close_lag_ms_p99=p99,
        rest_requests=reading.total("rest_requests"), rest_429=reading.total("rest_429"),
        reconnects=reading.total("reconnects"), malformed_frames=reading.total("malformed"),
        skipped_frames=reading.total("skipped"), corrections=reading.total("corrections"),
        history_missing=reading.history_missing)
