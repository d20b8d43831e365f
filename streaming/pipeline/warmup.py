"""Warm-up: REST backfill of every (symbol, timeframe) before going live, so MACD-V is valid
from the first live close. Bounded concurrency on top of the adapter's own rate limiter; an
exchange refusing one symbol never stops the others."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

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


async def fetch_history(adapter: ExchangeAdapter, symbol: str, tf: str, want: int, now_ms: int) -> list[Candle]:
    """At least `want` closed candles if the exchange has them (illiquid symbols skip buckets,
    so go further back page by page)."""
    size = timeframe_ms(tf)
    end = bucket_start(now_ms, tf)  # the forming bar is excluded
    got: list[Candle] = []
    hi = end
    for _ in range(MAX_PAGES):
        lo = hi - want * size
        page = _usable(await adapter.fetch_candles(symbol, tf, lo, hi), tf, end)
        got = _usable(page + got, tf, end)
        if len(got) >= want or not page:
            break
        hi = lo
    return got


async def run_warm_up(
    adapter: ExchangeAdapter,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    config: PipelineConfig,
    install: Callable[[str, str, list[Candle]], Awaitable[int]],
    progress: Callable[[int, int], None] | None,
    counters: Counter[str],
) -> WarmupReport:
    jobs = [(s, tf) for s in symbols for tf in timeframes]
    report = WarmupReport(total=len(jobs))
    sem = asyncio.Semaphore(config.warmup_concurrency)
    step = max(1, len(jobs) // 10)
    log.info("warm-up: %d streams (%d symbols x %d timeframes), %d candles each",
             len(jobs), len(symbols), len(timeframes), config.warmup_candles)

    async def one(symbol: str, tf: str) -> None:
        name = f"{symbol} {tf}"
        try:
            if symbol in report.refused:
                return
            async with sem:
                if symbol in report.refused:
                    return
                candles = await fetch_history(adapter, symbol, tf, config.warmup_candles, config.clock_ms())
            if len(candles) < config.warmup_candles:
                report.short[name] = len(candles)
            report.candles += await install(symbol, tf, candles)
        except UnknownSymbolError as exc:
            report.refused[symbol] = str(exc)
            counters["warmup_refused"] += 1
            log.warning("warm-up: %s refused by %s: %s", symbol, adapter.name, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one stream's failure must not stop the others
            report.failed[name] = f"{type(exc).__name__}: {exc}"
            counters["warmup_failed"] += 1
            log.warning("warm-up: %s failed: %s", name, report.failed[name])
        finally:
            report.done += 1
            if progress is not None:
                try:
                    progress(report.done, report.total)
                except Exception:
                    log.exception("warm-up progress callback failed")
            if report.done % step == 0 or report.done == report.total:
                log.info("warm-up: %d/%d streams", report.done, report.total)

    await asyncio.gather(*(one(s, tf) for s, tf in jobs))
    counters["warmup_candles"] += report.candles
    log.info("warm-up done: %d candles written, %d short, %d symbols refused, %d failed",
             report.candles, len(report.short), len(report.refused), len(report.failed))
    return report
