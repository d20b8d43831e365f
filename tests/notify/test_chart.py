"""The MACD-V chart: pure series equal the batch indicator, the PNG decodes at its size with a
drawn plot area, and matplotlib stays out of the worker."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import pandas as pd
import pytest
import redis.asyncio as aioredis
from PIL import Image

from streaming.indicators.macd_v_batch import macd_v_series
from streaming.notify.chart import HEIGHT_PX, WIDTH_PX, ChartRenderer, chart_data, render_png
from streaming.notify.sample import sample_alert, sample_candles
from streaming.store import CandleStore
from tests.notify.alerts import make_alert


def test_chart_data_is_the_indicator_over_all_candles():
    candles = sample_candles(300)
    data = chart_data(candles, bars=100)
    assert len(data.times) == 100 and data.times[-1] == candles[-1].timestamp
    df = pd.DataFrame({"high": [c.high for c in candles], "low": [c.low for c in candles],
                       "close": [c.close for c in candles]})
    batch = macd_v_series(df).tail(100)
    assert data.macd_v == pytest.approx(list(batch["macd_v"]), abs=1e-9)
    assert data.signal == pytest.approx(list(batch["signal"]), abs=1e-9)
    assert data.macd_v[-1] < -150  # the sample sells off through the oversold line
    short = chart_data(candles[:10])
    assert len(short.times) == 10 and all(v is None for v in short.macd_v)


def _plot_area_is_drawn(png: bytes) -> None:
    img = Image.open(io.BytesIO(png))
    img.load()
    assert img.format == "PNG" and img.size == (WIDTH_PX, HEIGHT_PX)
    rgb = img.convert("RGB")
    # inside the price axes and inside the oscillator axes: candle and line colours, not one blank fill
    for box in ((100, 60, 980, 380), (100, 430, 980, 640)):
        colours = rgb.crop(box).getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 20
        white = max(n for n, c in colours if c == (255, 255, 255))
        assert white < 0.97 * (box[2] - box[0]) * (box[3] - box[1])
    greenish = sum(n for n, (r, g, b) in rgb.getcolors(1 << 16) if g > r + 40 and g > 120)
    reddish = sum(n for n, (r, g, b) in rgb.getcolors(1 << 16) if r > g + 60 and r > 180)
    assert greenish > 200 and reddish > 200  # up and down candles


def test_render_png_decodes_at_the_expected_size_with_a_drawn_plot_area():
    _plot_area_is_drawn(render_png(chart_data(sample_candles()), "TEST-USD 1h"))


async def test_renderer_reads_the_stored_candles_and_shares_renders(redis_url):
    alert = make_alert(0, t0=sample_candles()[-1].timestamp)

    async def go():
        r = aioredis.Redis.from_url(redis_url)
        try:
            await CandleStore(r).write_many(1, "BTC-USD", "1h", sample_candles())
            renderer = ChartRenderer(r, concurrency=1)
            a, b = await asyncio.gather(renderer.chart(alert), renderer.chart(alert))
            none = await renderer.chart(make_alert(0, symbol="NONE-USD"))
            return a, b, none, renderer.rendered
        finally:
            await r.aclose()

    a, b, none, rendered = await go()
    assert a is b and rendered == 1 and none is None
    _plot_area_is_drawn(a)
    assert sample_alert().symbol == "TEST-USD"


def test_matplotlib_is_imported_by_the_chart_only():
    code = ("import sys, streaming.worker, streaming.pipeline, streaming.notify.service, streaming.notify.chart, "
            "streaming.cli; assert 'matplotlib' not in sys.modules, 'matplotlib imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
