"""Higher timeframes built from CLOSED 5m candles (Coinbase streams only 5m).

Buckets are UTC-aligned (epoch-ms modulo the timeframe). A higher bar is open of the first 5m,
max high, min low, close of the last, summed volume; it is synthetic only if every 5m in it is.
It closes when its last 5m bucket closes, when a 5m of a later bucket arrives (the last 5m
buckets may have had no trades), or by the clock (`flush`).

Memory per target is O(1): the bucket keeps the aggregate of all its 5m bars but the newest
(`prefix`) plus the newest 5m itself, so re-delivering or correcting the newest 5m replaces it
exactly, and a bitmask of the 5m slots seen so far detects duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from streaming.candle_checks import MAX_VALUE
from streaming.models import Candle
from streaming.timeframes import bucket_start, timeframe_ms

BASE = "5m"
BASE_MS = timeframe_ms(BASE)
DEFAULT_TARGETS: tuple[str, ...] = ("15m", "1h", "4h", "1d")
_STATE_VERSION = 1


class AggregationError(ValueError):
    pass


class Correction(NamedTuple):
    """A 5m input that could not be merged into an open bucket: `bucket` (open time of the
    `timeframe` bar it belongs to) was already closed and published, or the input replaced a
    5m bar that is not the newest of its open bucket. Rebuild that bar from the stored 5m
    candles with `aggregate` and overwrite it; never publish a second close for it."""

    timeframe: str
    bucket: int
    timestamp: int  # open time of the 5m input


class AggregateResult(NamedTuple):
    closed: list[tuple[str, Candle]]
    corrections: list[Correction]


class _Prefix:
    """Aggregate of some 5m bars of one bucket."""

    __slots__ = ("all_synthetic", "first_ts", "high", "low", "open", "volume")

    def __init__(self, c: Candle) -> None:
        self.first_ts = c.timestamp
        self.open = c.open
        self.high = c.high
        self.low = c.low
        self.volume = c.volume
        self.all_synthetic = c.synthetic

    def merge(self, c: Candle) -> None:
        if c.timestamp < self.first_ts:
            self.first_ts = c.timestamp
            self.open = c.open
        if c.high > self.high:
            self.high = c.high
        if c.low < self.low:
            self.low = c.low
        self.volume += c.volume
        self.all_synthetic = self.all_synthetic and c.synthetic

    def to_list(self) -> list[Any]:
        return [self.first_ts, self.open, self.high, self.low, self.volume, self.all_synthetic]

    @classmethod
    def from_list(cls, v: Any) -> _Prefix:
        if not isinstance(v, list) or len(v) != 6:
            raise AggregationError(f"aggregator prefix must be a 6-item list, got {v!r}")
        self = cls.__new__(cls)
        self.first_ts = _int(v[0], "prefix.first_ts")
        self.open, self.high, self.low, self.volume = (_num(x, "prefix price/volume") for x in v[1:5])
        if not isinstance(v[5], bool):
            raise AggregationError("aggregator prefix synthetic flag must be a boolean")
        self.all_synthetic = v[5]
        return self


class _Target:
    """The open bucket of one higher timeframe, and the newest bucket already closed."""

    __slots__ = ("bucket", "last", "last_closed", "mask", "prefix", "size", "timeframe")

    def __init__(self, timeframe: str) -> None:
        self.timeframe = timeframe
        self.size = timeframe_ms(timeframe)
        self.bucket: int | None = None
        self.prefix: _Prefix | None = None
        self.last: Candle | None = None  # the newest 5m of the open bucket
        self.mask = 0  # bit k = the k-th 5m slot of the open bucket has been seen
        self.last_closed: int | None = None

    def _start(self, b: int, c: Candle) -> None:
        self.bucket = b
        self.prefix = None
        self.last = c
        self.mask = 1 << ((c.timestamp - b) // BASE_MS)

    def _close(self) -> Candle:
        last = self.last
        p = self.prefix
        assert last is not None and self.bucket is not None
        if p is None:
            bar = Candle(self.bucket, last.open, last.high, last.low, last.close, last.volume, last.synthetic)
        else:
            bar = Candle(
                self.bucket,
                p.open,
                max(p.high, last.high),
                min(p.low, last.low),
                last.close,
                p.volume + last.volume,
                p.all_synthetic and last.synthetic,
            )
        self.last_closed = self.bucket
        self.bucket = None
        self.prefix = None
        self.last = None
        self.mask = 0
        return bar

    def add(self, c: Candle, closed: list[tuple[str, Candle]], corrections: list[Correction]) -> None:
        b = c.timestamp - c.timestamp % self.size
        if self.bucket is not None and b == self.bucket:
            bit = 1 << ((c.timestamp - b) // BASE_MS)
            last = self.last
            assert last is not None
            if self.mask & bit:
                if c.timestamp != last.timestamp:
                    corrections.append(Correction(self.timeframe, b, c.timestamp))
                    return
                self.last = c  # same open time again before close: replace
            elif c.timestamp > last.timestamp:
                if self.prefix is None:
                    self.prefix = _Prefix(last)
                else:
                    self.prefix.merge(last)
                self.last = c
            else:  # an earlier slot arriving late, still inside the open bucket
                if self.prefix is None:
                    self.prefix = _Prefix(c)
                else:
                    self.prefix.merge(c)
            self.mask |= bit
        else:
            if (self.bucket is not None and b < self.bucket) or (
                self.bucket is None and self.last_closed is not None and b <= self.last_closed
            ):
                corrections.append(Correction(self.timeframe, b, c.timestamp))
                return
            if self.bucket is not None:
                closed.append((self.timeframe, self._close()))
            self._start(b, c)
        if c.timestamp + BASE_MS == b + self.size:
            closed.append((self.timeframe, self._close()))

    def flush(self, now_ms: int, closed: list[tuple[str, Candle]]) -> None:
        if self.bucket is not None and self.bucket + self.size <= now_ms:
            closed.append((self.timeframe, self._close()))


class TimeframeAggregator:
    """Incremental 5m -> higher timeframes for one symbol. Pure: the caller feeds closed 5m bars."""

    __slots__ = ("_targets",)

    def __init__(self, targets: Sequence[str] = DEFAULT_TARGETS) -> None:
        if isinstance(targets, str) or not targets:
            raise AggregationError("targets must be a non-empty sequence of timeframes such as ('15m', '1h')")
        for tf in targets:
            size = timeframe_ms(tf)
            if size <= BASE_MS or size % BASE_MS:
                raise AggregationError(
                    f"cannot build {tf!r} from {BASE} candles: it must be a larger multiple of {BASE}"
                )
        if len(set(targets)) != len(targets):
            raise AggregationError(f"duplicate target timeframes: {tuple(targets)!r}")
        self._targets = tuple(_Target(tf) for tf in targets)

    @property
    def timeframes(self) -> tuple[str, ...]:
        return tuple(t.timeframe for t in self._targets)

    def process(self, closed_5m: Candle) -> AggregateResult:
        """Feed one closed 5m candle; returns the higher bars it closed and any corrections."""
        _check_input(closed_5m)
        closed: list[tuple[str, Candle]] = []
        corrections: list[Correction] = []
        for t in self._targets:
            t.add(closed_5m, closed, corrections)
        return AggregateResult(closed, corrections)

    def add(self, closed_5m: Candle) -> list[tuple[str, Candle]]:
        """Feed one closed 5m candle; returns (timeframe, bar) for every higher bar it closed.
        Use `process` to also learn about corrections of already-closed bars."""
        return self.process(closed_5m).closed

    def flush(self, now_ms: int) -> list[tuple[str, Candle]]:
        """Close every open bucket that ended at or before `now_ms`. Pass the clock minus a grace
        period (the last 5m bar of a bucket arrives a little after the bucket ends)."""
        closed: list[tuple[str, Candle]] = []
        for t in self._targets:
            t.flush(now_ms, closed)
        return closed

    def forming(self, timeframe: str) -> Candle | None:
        """The bar of the open bucket so far (not closed), or None."""
        for t in self._targets:
            if t.timeframe == timeframe:
                if t.bucket is None:
                    return None
                snapshot = _Target(timeframe)
                snapshot.bucket, snapshot.prefix, snapshot.last = t.bucket, t.prefix, t.last
                return snapshot._close()
        raise AggregationError(f"timeframe {timeframe!r} is not aggregated here ({', '.join(self.timeframes)})")

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot (masks as hex strings: a 1d mask has 288 bits)."""
        targets: dict[str, Any] = {}
        for t in self._targets:
            last = t.last
            targets[t.timeframe] = {
                "bucket": t.bucket,
                "last_closed": t.last_closed,
                "mask": format(t.mask, "x"),
                "prefix": None if t.prefix is None else t.prefix.to_list(),
                "last": None
                if last is None
                else [last.timestamp, last.open, last.high, last.low, last.close, last.volume, last.synthetic],
            }
        return {"v": _STATE_VERSION, "targets": targets}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimeframeAggregator:
        if not isinstance(data, Mapping) or data.get("v") != _STATE_VERSION:
            raise AggregationError(f"aggregator state must be a mapping with v={_STATE_VERSION}")
        targets = data.get("targets")
        if not isinstance(targets, Mapping) or not targets:
            raise AggregationError("aggregator state has no targets")
        self = cls(tuple(targets))
        for t in self._targets:
            d = targets[t.timeframe]
            if not isinstance(d, Mapping):
                raise AggregationError(f"aggregator state for {t.timeframe} must be a mapping")
            t.bucket = None if d.get("bucket") is None else _int(d["bucket"], "bucket")
            t.last_closed = None if d.get("last_closed") is None else _int(d["last_closed"], "last_closed")
            try:
                t.mask = int(d.get("mask", "0"), 16)
            except (TypeError, ValueError):
                raise AggregationError(f"aggregator mask for {t.timeframe} is not hex: {d.get('mask')!r}") from None
            t.prefix = None if d.get("prefix") is None else _Prefix.from_list(d["prefix"])
            raw = d.get("last")
            if raw is None:
                t.last = None
            else:
                if not isinstance(raw, list) or len(raw) != 7 or not isinstance(raw[6], bool):
                    raise AggregationError(f"aggregator last candle for {t.timeframe} is malformed: {raw!r}")
                o, h, lo, cl, v = (_num(x, "last price") for x in raw[1:6])
                t.last = Candle(_int(raw[0], "last.timestamp"), o, h, lo, cl, v, raw[6])
            if (t.bucket is None) != (t.last is None) or (t.bucket is None and (t.mask or t.prefix)):
                raise AggregationError(f"aggregator state for {t.timeframe} is inconsistent")
        return self

    @classmethod
    def rebuild(cls, candles_5m: Iterable[Candle], targets: Sequence[str] = DEFAULT_TARGETS) -> TimeframeAggregator:
        """State after replaying recent closed 5m candles (oldest first), outputs discarded.
        Replay at least since the start of the current bucket of the largest target."""
        agg = cls(targets)
        for c in candles_5m:
            agg.process(c)
        return agg

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeframeAggregator):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def aggregate(candles: Iterable[Candle], timeframe: str) -> list[Candle]:
    """Batch: every bucket of `timeframe` that holds at least one of `candles`, oldest first,
    including an incomplete last bucket. Input in any order; for a repeated open time the
    later one in the input wins."""
    timeframe_ms(timeframe)  # raises UnknownTimeframe early, even for empty input
    by_ts: dict[int, Candle] = {}
    for c in candles:
        _check_input(c, size_ms=None)
        by_ts[c.timestamp] = c
    out: list[Candle] = []
    cur: list[Candle] = []
    cur_bucket: int | None = None
    for ts in sorted(by_ts):
        b = bucket_start(ts, timeframe)
        if b != cur_bucket and cur:
            out.append(_combine(cur_bucket, cur))  # type: ignore[arg-type]
            cur = []
        cur_bucket = b
        cur.append(by_ts[ts])
    if cur:
        out.append(_combine(cur_bucket, cur))  # type: ignore[arg-type]
    return out


def _combine(bucket: int, bars: list[Candle]) -> Candle:
    return Candle(
        timestamp=bucket,
        open=bars[0].open,
        high=max(c.high for c in bars),
        low=min(c.low for c in bars),
        close=bars[-1].close,
        volume=sum(c.volume for c in bars),
        synthetic=all(c.synthetic for c in bars),
    )


def _check_input(c: object, size_ms: int | None = BASE_MS) -> None:
    if not isinstance(c, Candle):
        raise AggregationError(f"expected a Candle, got {type(c).__name__}")
    if size_ms is not None and c.timestamp % size_ms:
        raise AggregationError(f"candle at {c.timestamp} is not aligned to {BASE} buckets")
    # bounded inputs keep every sum finite (a bucket holds at most a few hundred 5m bars); the
    # comparisons are False for NaN too
    m = MAX_VALUE
    try:
        ok = (-m <= c.open <= m and -m <= c.high <= m and -m <= c.low <= m and -m <= c.close <= m
              and -m <= c.volume <= m)
    except TypeError:
        ok = False
    if not ok:
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in (c.open, c.high, c.low, c.close, c.volume)):
            raise AggregationError(f"candle at {c.timestamp} has a non-finite price or volume")
        raise AggregationError(f"candle at {c.timestamp} has a price or volume beyond {MAX_VALUE:g}")


def _int(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise AggregationError(f"aggregator state field {name} must be an integer, got {v!r}")
    return v


def _num(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise AggregationError(f"aggregator state field {name} must be a finite number, got {v!r}")
    return float(v)
