"""Warm-up: REST history of every (symbol, timeframe) up to the start, so MACD-V is valid from
the first live close. Bounded concurrency on top of the adapter's own rate limiter; an exchange
refusing one symbol never stops the others.

Only bars that closed before `until_ms` (the moment the live stream was opened) are fetched: the
later ones reach the pipeline through the live stream, which holds each stream's frames until
`ready` tells it the stream's newest stored bar and fills what lies between from the exchange, so
every bar that closes after the start gets its close event. A stream whose store already holds
enough history (a warm restart) fetches nothing: the live stream fills the bars after its newest
stored one, with their close events, as after a reconnect (so a close lost to a crash is
published after all). Without a live stream (`ready` None) it fetches only the missing bars.
Only a cold stream, or one missing more than `warmup_candles` bars, gets the full history,
stored as already published."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from streaming.adapters.base import ExchangeAdapter, UnknownSymbolError
from streaming.candle_checks import candle_defect
from streaming.models import Candle
from streaming.pipeline.config import PipelineConfig
from streaming.timeframes import bucket_start, timeframe_ms

log = logging.getLogger(__name__)

MAX_PAGES = 4  # ranges fetched backwards per stream when gaps leave too few candles


@dataclass
class WarmupReport:
    total: int = 0
    done: int = 0
    candles: int = 0  # candles written (new or changed)
    short: dict[str, int] = field(default_factory=dict)  # "SYM tf" -> candles found (< target)
    refused: dict[str, str] = field(default_factory=dict)  # symbol -> the exchange's reason
    failed: dict[str, str] = field(default_factory=dict)  # "SYM tf" -> error
    requests: int = 0  # candle requests sent to the exchange
    # (symbol, tf) -> (open time of its newest stored bar, the error) of each failed stream
    errors: dict[tuple[str, str], tuple[int | None, Exception]] = field(default_factory=dict)
    now_ms: int = 0  # the history fetched ends at the bar forming then

    @property
    def ok(self) -> bool:
        return not self.refused and not self.failed


def _usable(candles: Sequence[Candle], tf: str, end: int) -> list[Candle]:
    """Candles that can exist (streaming.candle_checks), aligned, closed (open + tf <= end) and
    one per open time, oldest first."""
    size = timeframe_ms(tf)
    by_ts: dict[int, Candle] = {}
    for c in candles:
        if (candle_defect(c) is None and c.timestamp % size == 0 and c.timestamp + size <= end
                and not c.synthetic):
            by_ts[c.timestamp] = c
    return [by_ts[t] for t in sorted(by_ts)]


class StoredTail(NamedTuple):
    """What the store holds of one stream: how many closed bars, the oldest and newest one's open
    time."""

    stored: int
    newest: int | None
    oldest: int | None = None


async def fetch_history(adapter: ExchangeAdapter, symbol: str, tf: str, want: int, now_ms: int,
                        report: WarmupReport | None = None) -> list[Candle]:
    """At least `want` closed candles if the exchange has them (illiquid symbols skip buckets,
    so go further back page by page)."""
    size = timeframe_ms(tf)
    end = bucket_start(now_ms, tf)  # the forming bar is excluded
    got: list[Candle] = []
    hi = end
    for _ in range(MAX_PAGES):
        lo = hi - want * size
        if report is not None:
            report.requests += 1
        page = _usable(await adapter.fetch_candles(symbol, tf, lo, hi), tf, end)
        got = _usable(page + got, tf, end)
        if len(got) >= want or not page:
            break
        hi = lo
    return got


async def fetch_missing(adapter: ExchangeAdapter, symbol: str, tf: str, want: int, now_ms: int,
                        tail: StoredTail, report: WarmupReport, live_fills: bool) -> list[Candle]:
    """When the store holds `want` bars (or reaches `want` buckets back: a quiet symbol has fewer
    bars than buckets) and fewer than `want` are missing since its newest: none if the live stream
    fills (and publishes) the bars after the newest stored one (`live_fills`), else the missing
    ones. Otherwise the full history (fetch_history)."""
    size = timeframe_ms(tf)
    end = bucket_start(now_ms, tf)
    deep = tail.stored >= want or (tail.oldest is not None and tail.oldest <= end - want * size)
    if tail.newest is None or not deep or end - tail.newest > want * size:
        return await fetch_history(adapter, symbol, tf, want, now_ms, report)
    if live_fills:
        return []
    start = tail.newest + size
    if start >= end:
        return []
    report.requests += 1
    return _usable(await adapter.fetch_candles(symbol, tf, start, end), tf, end)


async def run_warm_up(
    adapter: ExchangeAdapter,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    config: PipelineConfig,
    install: Callable[[str, str, list[Candle]], Awaitable[int]],
    progress: Callable[[int, int, int], None] | None,
    counters: Counter[str],
    *,
    until_ms: int | None = None,
    stored: Callable[[str, str], Awaitable[StoredTail]] | None = None,
    ready: Callable[[str, str, int | None], None] | None = None,
) -> WarmupReport:
    """`install(symbol, tf, candles)` stores them (returns how many changed the store);
    `stored(symbol, tf)` tells what the store holds already; `ready(symbol, tf, newest)` is
    called once per stream when its history is in (newest: open time of its newest stored bar)."""
    now_ms = config.clock_ms() if until_ms is None else until_ms
    jobs = [(s, tf) for s in symbols for tf in timeframes]
    report = WarmupReport(total=len(jobs), now_ms=now_ms)
    sem = asyncio.Semaphore(config.warmup_concurrency)
    step = max(1, len(jobs) // 10)
    log.info("warm-up: %d streams (%d symbols x %d timeframes), %d candles each",
             len(jobs), len(symbols), len(timeframes), config.warmup_candles)

    async def one(symbol: str, tf: str) -> None:
        name = f"{symbol} {tf}"
        newest: int | None = None
        try:
            if symbol in report.refused:
                return
            async with sem:  # bounds the Redis reads as much as the REST requests
                if symbol in report.refused:
                    return
                tail = await stored(symbol, tf) if stored is not None else StoredTail(0, None)
                newest = tail.newest
                candles = await fetch_missing(adapter, symbol, tf, config.warmup_candles, now_ms, tail, report,
                                              ready is not None)
            if tail.stored + len(candles) < config.warmup_candles:
                report.short[name] = tail.stored + len(candles)
            if candles:
                written = await install(symbol, tf, candles)  # not `+= await`: that reads the sum first
                report.candles += written
                newest = max(candles[-1].timestamp, newest or 0)
        except UnknownSymbolError as exc:
            report.refused[symbol] = str(exc)
            counters["warmup_refused"] += 1
            log.warning("warm-up: %s refused by %s: %s", symbol, adapter.name, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one stream's failure must not stop the others
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            report.errors[(symbol, tf)] = (newest, exc)
            counters["warmup_failed"] += 1
            log.warning("warm-up: %s failed: %s", name, report.failed[name])
        finally:
            report.done += 1
            if ready is not None:
                try:
                    ready(symbol, tf, newest)
                except Exception:
                    log.exception("warm-up: handing %s over to the live stream failed", name)
            if progress is not None:
                try:
                    progress(report.done, report.total, report.candles)
                except Exception:
                    log.exception("warm-up progress callback failed")
            if report.done % step == 0 or report.done == report.total:
                log.info("warm-up: %d/%d streams", report.done, report.total)

    await asyncio.gather(*(one(s, tf) for s, tf in jobs))
    counters["warmup_candles"] += report.candles
    counters["warmup_requests"] += report.requests
    log.info("warm-up done: %d candles written, %d requests, %d short, %d symbols refused, %d failed",
             report.candles, report.requests, len(report.short), len(report.refused), len(report.failed))
    return report
