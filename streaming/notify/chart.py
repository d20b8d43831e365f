"""The MACD-V chart of an alert: a PNG of the last ~100 bars (price candles; MACD-V, signal,
histogram and the +-150 lines), rendered off the alert path.

`chart_data` is pure (candles -> series, MACD-V from streaming.indicators, the same numbers the
worker alerts on). `render_png` draws with matplotlib's object API on the Agg canvas: headless, no
pyplot global state, matplotlib imported only here and only when a chart is first drawn (the
worker never imports it). `ChartRenderer` reads the candles from Redis, renders in worker threads
with bounded concurrency and a timeout, and shares one render between destinations.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from streaming.indicators import MacdV
from streaming.models import Candle
from streaming.notify.events import AlertEvent
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)

BARS = 100
HISTORY = 400  # candles read: MACD-V's EMAs settle long before the 100 drawn
WIDTH_PX, HEIGHT_PX, DPI = 1000, 700, 100
ZONE = 150.0


class ChartData(NamedTuple):
    times: list[int]  # open ms
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    macd_v: list[float | None]
    signal: list[float | None]
    histogram: list[float | None]


def chart_data(candles: Sequence[Candle], bars: int = BARS) -> ChartData:
    """Series for the last `bars` candles; MACD-V is computed over all of `candles` (oldest first)."""
    state = MacdV()
    values = [state.update_candle(c) for c in candles]
    cs, vs = list(candles)[-bars:], values[-bars:]
    return ChartData([c.timestamp for c in cs], [c.open for c in cs], [c.high for c in cs], [c.low for c in cs],
                     [c.close for c in cs], [v.macd_v for v in vs], [v.signal for v in vs],
                     [v.histogram for v in vs])


_import_lock = threading.Lock()


def _matplotlib() -> tuple[Any, Any]:
    with _import_lock:  # the first import builds the font cache: once, not per thread
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    return Figure, FigureCanvasAgg


def _nan(xs: Sequence[float | None]) -> list[float]:
    return [float("nan") if x is None else x for x in xs]


def render_png(data: ChartData, title: str, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> bytes:
    """The chart as PNG bytes of exactly width_px x height_px."""
    import io

    figure_cls, canvas_cls = _matplotlib()
    fig = figure_cls(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")
    canvas_cls(fig)
    price, osc = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2], "hspace": 0.05})
    x = list(range(len(data.times)))
    up = [c >= o for o, c in zip(data.open, data.close, strict=True)]
    colors = ["#26a69a" if u else "#ef5350" for u in up]
    price.vlines(x, data.low, data.high, colors=colors, linewidth=1)
    price.bar(x, [abs(c - o) or (h - lo) * 0.01 or 1e-12 for o, c, h, lo in
                  zip(data.open, data.close, data.high, data.low, strict=True)],
              bottom=[min(o, c) for o, c in zip(data.open, data.close, strict=True)], color=colors, width=0.7)
    price.set_title(title, fontsize=12)
    price.set_ylabel("price")
    price.grid(alpha=0.25)
    hist = _nan(data.histogram)
    osc.bar(x, hist, color=["#26a69a" if h >= 0 else "#ef5350" for h in [0 if h != h else h for h in hist]],
            width=0.7, alpha=0.6, label="histogram")
    osc.plot(x, _nan(data.macd_v), color="#1f4e9c", linewidth=1.5, label="MACD-V")
    osc.plot(x, _nan(data.signal), color="#ff9800", linewidth=1.2, label="signal")
    for level in (ZONE, -ZONE):
        osc.axhline(level, color="#888888", linestyle="--", linewidth=1)
    osc.axhline(0, color="#cccccc", linewidth=0.8)
    osc.set_ylabel("MACD-V")
    osc.grid(alpha=0.25)
    osc.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
    if x:
        step = max(1, len(x) // 6)
        osc.set_xticks(x[::step], [datetime.fromtimestamp(t / 1000, UTC).strftime("%m-%d %H:%M")
                                   for t in data.times[::step]], fontsize=8)
        osc.set_xlim(-1, len(x))
    fig.subplots_adjust(left=0.08, right=0.98, top=0.94, bottom=0.07)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def chart_title(alert: AlertEvent) -> str:
    return f"{alert.source_exchange} {alert.symbol} {alert.timeframe} - MACD-V {alert.macd_v:.1f} ({alert.label})"


class ChartRenderer:
    """Charts for alerts: at most `concurrency` renders at once, each bounded by `timeout_s`
    (None = no chart: the alert goes without one), the last `cache_size` kept by alert id."""

    def __init__(self, redis: Any, concurrency: int = 2, timeout_s: float = 10.0, cache_size: int = 64) -> None:
        self._redis = redis
        self._sem = asyncio.Semaphore(concurrency)
        self._timeout = timeout_s
        self._cache: OrderedDict[str, asyncio.Future] = OrderedDict()
        self._cache_size = cache_size
        self.rendered = 0
        self.failed = 0

    async def chart(self, alert: AlertEvent) -> bytes | None:
        fut = self._cache.get(alert.id)
        if fut is None:
            fut = asyncio.ensure_future(self._render(alert))
            self._cache[alert.id] = fut
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return await asyncio.shield(fut)

    async def _candles(self, alert: AlertEvent) -> list[Candle]:
        from streaming.store import CandleStore

        tf = timeframe_ms(alert.timeframe)
        return await CandleStore(self._redis).read_range(alert.source_exchange_id, alert.symbol, alert.timeframe,
                                                         alert.timestamp - HISTORY * tf, alert.timestamp + 1)

    async def _render(self, alert: AlertEvent) -> bytes | None:
        try:
            async with self._sem:
                candles = await self._candles(alert)
                if len(candles) < 2:
                    return None
                data = chart_data(candles)
                png = await asyncio.wait_for(asyncio.to_thread(render_png, data, chart_title(alert)), self._timeout)
                self.rendered += 1
                return png
        except Exception as exc:  # a chart is a bonus: the alert goes without it
            self.failed += 1
            log.warning("chart for %s failed (%s: %s); sending without it", alert.id, type(exc).__name__, exc)
            return None
