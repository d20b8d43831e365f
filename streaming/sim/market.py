"""The simulated markets: symbols and metadata per exchange, their bars, and the truth.

Coinbase sends no candle for a bucket without trades; Binance sends a flat zero-volume kline.
So the truth of a quiet bucket is "no candle" on Coinbase and a flat bar on Binance.
"""

from __future__ import annotations

import copy
import math
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from streaming.models import Candle
from streaming.sim import recordings
from streaming.sim.clock import SimClock
from streaming.sim.config import BINANCE_LIKE, EXCHANGES, SimConfig
from streaming.sim.forming import combine, partial
from streaming.sim.series import DAY_MS, FIVE_MIN_MS, Bar, Series, price_decimals

# every interval that is a whole number of 5m bars and divides a day
INTERVAL_MS: dict[str, int] = {
    "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
    "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000,
}


class UnknownSimSymbol(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class UnknownSimTimeframe(ValueError):
    pass


class UnknownSimExchange(ValueError):
    pass


def check_exchange(exchange: str) -> str:
    if exchange not in EXCHANGES:
        raise UnknownSimExchange(f"unknown exchange {exchange!r}; expected one of {', '.join(EXCHANGES)}")
    return exchange


def interval_ms(timeframe: str) -> int:
    try:
        return INTERVAL_MS[timeframe]
    except KeyError:
        raise UnknownSimTimeframe(
            f"timeframe {timeframe!r} not simulated; expected one of {', '.join(INTERVAL_MS)}") from None


def split_symbol_format(fmt: str, n: int) -> tuple[str, str]:
    """("SIM{n}-USD", 3) -> ("SIM3", "USD")."""
    prefix, _, suffix = fmt.partition("{n}")
    return f"{prefix}{n}", suffix.lstrip("-_/") or "USD"


# quote assets valued at $1 when a Binance symbol's price is derived from the Coinbase recording
USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "FDUSD"})


def _number(value: object) -> float:
    """A recorded string number, or NaN when it is missing or not a finite number."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _hashed_price(symbol: str) -> float:
    x = zlib.crc32(symbol.encode())
    return round(10 ** ((x % 6000) / 1000 - 1.5), 6) or 1.0


class Market:
    def __init__(self, config: SimConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        start = clock.start_ms
        self.anchor_ms = start - start % DAY_MS - config.history_days * DAY_MS
        self._series: dict[tuple[str, str], Series] = {}
        self._lock = threading.Lock()
        self._synthetic: dict[str, list[str]] = {}
        self._assets: dict[tuple[str, str], tuple[str, str]] = {}
        rng = np.random.default_rng([config.seed & 0xFFFFFFFF, 7])
        self._base_price: dict[tuple[str, str], float] = {}
        for ex in EXCHANGES:
            names = []
            for n in range(1, config.symbols + 1):
                base, quote = split_symbol_format(config.symbol_format(ex), n)
                sym = config.symbol_format(ex).format(n=n)
                names.append(sym)
                self._assets[(ex, sym)] = (base, quote)
                self._base_price[(ex, sym)] = float(10 ** rng.uniform(-1.0, 4.5))
            self._synthetic[ex] = names
        root: Path | None = config.recordings if config.include_recorded_products else None
        self._recorded_cb = {p["product_id"]: p for p in recordings.coinbase_products(root)
                             if isinstance(p, dict) and isinstance(p.get("product_id"), str)}
        info = recordings.binance_exchange_info(root)
        self._recorded_bn = {s["symbol"]: s for s in info.get("symbols", [])
                             if isinstance(s, dict) and isinstance(s.get("symbol"), str)}
        self.exchange_info_head = {k: v for k, v in info.items() if k != "symbols"}
        self.real_start = time.time()

    # ---- symbols ------------------------------------------------------------------------------

    def symbols(self, exchange: str) -> list[str]:
        """The synthetic symbols (the ones with live data worth subscribing)."""
        return list(self._synthetic[check_exchange(exchange)])

    def is_synthetic(self, exchange: str, symbol: str) -> bool:
        return (exchange, symbol) in self._assets

    def known(self, exchange: str, symbol: str) -> bool:
        if self.is_synthetic(exchange, symbol):
            return True
        recorded = self._recorded_cb if exchange == "coinbase" else self._recorded_bn
        return symbol in recorded

    def assets(self, exchange: str, symbol: str) -> tuple[str, str]:
        return self._assets[(exchange, symbol)]

    def recorded_products(self) -> dict[str, dict[str, Any]]:
        return self._recorded_cb

    def recorded_symbols(self) -> dict[str, dict[str, Any]]:
        return self._recorded_bn

    def _recorded_usd(self, asset: str) -> tuple[float, float] | None:
        """(price, 24 h volume in the asset) of `{asset}-USD` in the Coinbase recording, if listed."""
        if asset in USD_LIKE:
            return 1.0, math.nan
        product = self._recorded_cb.get(f"{asset}-USD")
        if product is None:
            return None
        price, volume = _number(product.get("price")), _number(product.get("volume_24h"))
        return (price, volume) if price > 0 else None

    def _binance_reference(self, symbol: str) -> tuple[float, float] | None:
        """A recorded Binance symbol's price and 24 h base volume, derived from the Coinbase
        recording of its two assets (BTCUSDT trades where BTC-USD does), or None."""
        info = self._recorded_bn.get(symbol) or {}
        base, quote = self._recorded_usd(str(info.get("baseAsset"))), self._recorded_usd(str(info.get("quoteAsset")))
        if base is None or quote is None:
            return None
        return base[0] / quote[0], base[1]

    def base_price(self, exchange: str, symbol: str) -> float:
        if (exchange, symbol) in self._base_price:
            return self._base_price[(exchange, symbol)]
        if exchange == "coinbase":
            price = _number((self._recorded_cb.get(symbol) or {}).get("price"))
            if price > 0:
                return price
        else:
            reference = self._binance_reference(symbol)
            if reference is not None:
                return reference[0]
        return _hashed_price(symbol)

    def _recorded_volume(self, exchange: str, symbol: str) -> float:
        """24 h base volume of a recorded symbol before it has a walk: the recording's where it
        has one (Binance: the Coinbase recording of the same base), else a stable made-up one worth
        at most $100,000, so that made-up symbols never outrank the recorded markets."""
        reference = self._binance_reference(symbol) if exchange != "coinbase" else None
        if reference is not None and reference[1] > 0:
            return reference[1]
        return float(zlib.crc32(symbol.encode()) % 100_000 + 1) / self.base_price(exchange, symbol)

    def series(self, exchange: str, symbol: str) -> Series:
        key = (check_exchange(exchange), symbol)
        s = self._series.get(key)
        if s is not None:
            return s
        if not self.known(exchange, symbol):
            raise UnknownSimSymbol(f"unknown symbol {symbol!r} on {exchange}")
        with self._lock:
            s = self._series.get(key)
            if s is None:
                s = Series(seed=self.config.seed, exchange=exchange, symbol=symbol,
                           base_price=self.base_price(exchange, symbol), anchor_ms=self.anchor_ms,
                           history_days=self.config.history_days, gap_probability=self.config.gap_probability)
                self._series[key] = s
        return s

    def decimals(self, exchange: str, symbol: str) -> int:
        s = self._series.get((exchange, symbol))
        return s.decimals if s is not None else price_decimals(self.base_price(exchange, symbol))

    # ---- bars ---------------------------------------------------------------------------------

    def closed(self, exchange: str, symbol: str, step_ms: int, bucket: int) -> Bar | None:
        """The final bar of the bucket opening at `bucket` (None: quiet bucket on Coinbase)."""
        s = self.series(exchange, symbol)
        k = step_ms // FIVE_MIN_MS
        first = s.index_of(bucket)
        if first < 0:
            return None
        if k == 1:
            bar = s.bar(first)
            return None if bar.trades == 0 and exchange == "coinbase" else bar
        return s.aggregate(first, first + k, skip_quiet=exchange == "coinbase")

    def forming(self, exchange: str, symbol: str, step_ms: int, now_ms: int) -> Bar | None:
        """The bar of the bucket containing `now_ms`, as far as it has formed."""
        s = self.series(exchange, symbol)
        idx = s.index_of(now_ms)
        current = s.bar(idx)
        part = partial(current, (now_ms - current.t) / FIVE_MIN_MS, s.decimals)
        bucket = now_ms - (now_ms - self.anchor_ms) % step_ms
        quiet_ok = exchange != "coinbase"
        if step_ms == FIVE_MIN_MS:
            return part if quiet_ok or part.trades else None
        first = s.index_of(bucket)
        done = s.bars(FIVE_MIN_MS, bucket, current.t, skip_quiet=not quiet_ok)
        if not quiet_ok and part.trades == 0:
            if not done:
                return None
            return combine(done[0], done[1:])._replace(t=bucket)
        if first == idx or not done:
            return part._replace(t=bucket)
        return combine(done[0], [*done[1:], part])._replace(t=bucket)

    def history(self, exchange: str, symbol: str, step_ms: int, start_ms: int, end_ms: int,
                now_ms: int) -> list[Bar]:
        """Bars with open time in [start_ms, end_ms), oldest first: closed ones, and the forming one
        if its bucket is in range (as the real REST APIs do). Nothing from the future."""
        s = self.series(exchange, symbol)
        current = now_ms - (now_ms - self.anchor_ms) % step_ms
        out = s.bars(step_ms, max(start_ms, self.anchor_ms), min(end_ms, current),
                     skip_quiet=exchange == "coinbase")
        if start_ms <= current < end_ms:
            bar = self.forming(exchange, symbol, step_ms, now_ms)
            if bar is not None:
                out.append(bar)
        return out

    def truth(self, exchange: str, symbol: str, timeframe: str, now_ms: int | None = None,
              start_ms: int | None = None) -> list[Candle]:
        """Every closed bar from the start of history up to the simulated now."""
        step = interval_ms(timeframe)
        now = self.clock.now_ms() if now_ms is None else now_ms
        current = now - (now - self.anchor_ms) % step
        bars = self.series(exchange, symbol).bars(step, self.anchor_ms if start_ms is None else start_ms,
                                                  current, skip_quiet=exchange == "coinbase")
        return [Candle(b.t, b.o, b.h, b.l, b.c, b.v) for b in bars]

    def stats_24h(self, exchange: str, symbol: str, now_ms: int) -> dict[str, float]:
        """Last 24 h of the symbol: open, high, low, last, volume (base) and quote volume."""
        if not self.is_synthetic(exchange, symbol) and (exchange, symbol) not in self._series:
            # recorded symbols get a walk only when someone asks for their candles
            price = self.base_price(exchange, symbol)
            vol = self._recorded_volume(exchange, symbol)
            return {"open": price, "high": price, "low": price, "last": price, "volume": vol,
                    "quote_volume": vol * price, "count": 0}
        s = self.series(exchange, symbol)
        idx = s.index_of(now_ms)
        lo = max(0, idx - 288)
        s.ensure(idx)
        last = self.forming(exchange, symbol, FIVE_MIN_MS, now_ms)
        closes = s.c[lo:idx]
        volumes = s.v[lo:idx]
        last_price = last.c if last is not None else (float(closes[-1]) if len(closes) else s.bar(idx).o)
        return {
            "open": float(s.o[lo]), "high": float(max(s.h[lo:idx].max(initial=last_price), last_price)),
            "low": float(min(s.l[lo:idx].min(initial=last_price), last_price)), "last": last_price,
            "volume": float(volumes.sum()), "quote_volume": float((volumes * closes).sum()),
            "count": int(s.n[lo:idx].sum()),
        }

    def is_binance_like(self, exchange: str) -> bool:
        return exchange in BINANCE_LIKE

    def template_product(self) -> dict[str, Any]:
        return copy.deepcopy(self._recorded_cb.get("BTC-USD") or {})

    def template_symbol(self) -> dict[str, Any]:
        return copy.deepcopy(self._recorded_bn.get("ETHBTC") or {})
