"""Shared helpers of the pipeline tests: fixture candles, a subscriber, running coroutines."""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import redis
import redis.asyncio as aioredis

from streaming.models import Candle, CandleUpdate
from streaming.pipeline import CandlePipeline, PipelineConfig


def load_candles(fixtures_dir: Path, name: str) -> list[Candle]:
    with open(fixtures_dir / "ohlcv" / name) as fh:
        return [Candle(int(r["timestamp_ms"]), float(r["open"]), float(r["high"]), float(r["low"]),
                       float(r["close"]), float(r["volume"])) for r in csv.DictReader(fh)]


def trend_candles(factor: float, bars: int = 60, start_price: float = 100.0, start_ms: int = 1_700_000_100_000,
                  step_ms: int = 300_000) -> list[Candle]:
    """The synthetic trend of docs/macd-v.md."""
    start_ms -= start_ms % step_ms
    out, price = [], start_price
    for i in range(bars):
        if i:
            price *= factor
        out.append(Candle(start_ms + i * step_ms, price, price * 1.01, price * 0.99, price, 1.0))
    return out


def frame(candles: Iterable[Candle]) -> pd.DataFrame:
    cs = list(candles)
    return pd.DataFrame({"high": [c.high for c in cs], "low": [c.low for c in cs], "close": [c.close for c in cs],
                         "synthetic": [c.synthetic for c in cs]})


def updates(candles: Iterable[Candle], symbol: str = "BTCUSDT", tf: str = "5m", exchange: str = "binance",
            source: str = "websocket") -> list[CandleUpdate]:
    return [CandleUpdate(exchange, symbol, tf, c, True, source) for c in candles]  # type: ignore[arg-type]


class Subscriber:
    """A real Redis subscriber on a background thread collecting (channel, json) messages."""

    def __init__(self, url: str, patterns: list[str]) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.pubsub = self.client.pubsub()
        patterns = [*patterns, "test-settle"]
        self.pubsub.psubscribe(*patterns)
        # wait until the subscription is live so nothing published afterwards is missed
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            m = self.pubsub.get_message(timeout=0.05, ignore_subscribe_messages=False)
            if m and m["type"] == "psubscribe" and m["data"] == len(patterns):
                break
        self.messages: list[tuple[str, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            m = self.pubsub.get_message(timeout=0.05)
            if m and m["type"] == "pmessage":
                self.messages.append((m["channel"], json.loads(m["data"])))

    def settle(self, client: redis.Redis) -> None:
        """Wait until everything published before now has been received (a marker message)."""
        token = f"settle-{time.monotonic_ns()}"
        channel = "test-settle"
        n = len(self.messages)
        deadline = time.monotonic() + 5
        client.publish(channel, json.dumps({"settle": token}))
        while time.monotonic() < deadline:
            if any(d == {"settle": token} for _, d in self.messages[n:]):
                self.messages = [(c, d) for c, d in self.messages if c != channel]
                return
            time.sleep(0.01)
        raise AssertionError("subscriber did not receive the settle marker")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.pubsub.close()
        self.client.close()


async def make_pipeline(url: str, symbols, *, exchange_id: int = 2, exchange: str = "binance",
                        timeframes=("5m", "15m", "1h", "4h", "1d"), native_timeframes=None,
                        **config) -> tuple[aioredis.Redis, CandlePipeline]:
    r = aioredis.Redis.from_url(url)
    p = CandlePipeline(r, exchange_id, exchange, symbol_pools=symbols, timeframes=timeframes,
                       native_timeframes=native_timeframes, config=PipelineConfig(**config))
    return r, p
