"""Binance REST: pure body parsers plus a thin weight-limited async client."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from streaming.adapters.base import AdapterError, AuthError, Credentials, UnknownSymbolError
from streaming.adapters.binance import schemas as s
from streaming.adapters.binance.auth import signer
from streaming.adapters.http import HttpClient, Response
from streaming.adapters.numbers import num_or_zero
from streaming.adapters.ratelimit import WeightBudget
from streaming.adapters.skips import SCHEMA, BadFrame
from streaming.adapters.validate import candles_from_rows, check_timestamp, make_candle
from streaming.models import Balance, Candle, ProductStats
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)

MAX_KLINES_PER_REQUEST = 1000
WEIGHT = {"exchangeInfo": 20, "ticker24hAll": 80, "klines": 2, "account": 20}
INVALID_SYMBOL = -1121
AUTH_CODES = {-2014, -2015, -1022, -2008}  # bad key format, rejected key/IP/permission, bad signature

_klines = msgspec.json.Decoder(list[list[Any]])


def parse_exchange_info(body: bytes) -> dict[str, s.SymbolInfo]:
    try:
        info = msgspec.json.decode(body, type=s.ExchangeInfo)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"binance: unexpected exchangeInfo response: {exc}") from None
    return {x.symbol: x for x in info.symbols}


def parse_products(info_body: bytes, ticker_body: bytes, exchange: str = "binance") -> list[ProductStats]:
    symbols = parse_exchange_info(info_body)
    try:
        tickers = {t.symbol: t for t in msgspec.json.decode(ticker_body, type=list[s.Ticker])}
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"{exchange}: unexpected ticker/24hr response: {exc}") from None
    out = []
    for sym, info in symbols.items():
        t = tickers.get(sym)
        out.append(ProductStats(
            exchange=exchange, symbol=sym, base=info.baseAsset, quote=info.quoteAsset,
            price=num_or_zero(t.lastPrice) if t else 0.0, volume_24h=num_or_zero(t.volume) if t else 0.0,
            quote_volume_24h=num_or_zero(t.quoteVolume) if t else 0.0,
            tradable=info.status == "TRADING", status=info.status.lower() or "unknown"))
    return out


def parse_klines(body: bytes, step_ms: int | None) -> tuple[list[Candle], int]:
    """Rows [openTime, o, h, l, c, v, closeTime, ...] -> candles oldest first, and rows skipped."""
    try:
        rows = _klines.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"binance: unexpected klines response: {exc}") from None
    def to_candle(row: list[Any]) -> Candle:
        if len(row) < 6 or type(row[0]) is not int:
            raise BadFrame(SCHEMA, "kline row too short or without an integer open time")
        return make_candle(check_timestamp(row[0], step_ms), row[1], row[2], row[3], row[4], row[5])

    return candles_from_rows(rows, to_candle)


def parse_account(body: bytes) -> list[Balance]:
    try:
        account = msgspec.json.decode(body, type=s.Account)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"binance: unexpected account response: {exc}") from None
    return [Balance(b.asset, num_or_zero(b.free), num_or_zero(b.locked)) for b in account.balances]


def error_of(body: bytes) -> tuple[int | None, str]:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None, body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        code = data.get("code")
        return (code if isinstance(code, int) else None), str(data.get("msg", ""))[:200]
    return None, str(data)[:200]


class BinanceRest:
    def __init__(self, rest_url: str, api_limits: dict[str, Any], name: str = "binance") -> None:
        self.name = name
        default_weight = 1200 if name == "binance_us" else 6000
        self.budget = WeightBudget(int(api_limits.get("rest_weight_per_minute", default_weight)))
        self.http = HttpClient(rest_url, name, throttle=self.budget.acquire,
                               on_response=lambda r: self.budget.observe(r.headers.get("X-MBX-USED-WEIGHT-1M")))

    async def close(self) -> None:
        await self.http.close()

    def _check(self, resp: Response, what: str, symbol: str | None = None) -> bytes:
        if resp.status == 200:
            return resp.body
        code, msg = error_of(resp.body)
        if code == INVALID_SYMBOL:
            raise UnknownSymbolError(f"{self.name}: unknown symbol {symbol!r} ({msg})")
        if resp.status in (401, 403) or code in AUTH_CODES:
            raise AuthError(f"{self.name}: {what} refused (HTTP {resp.status}, code {code}: {msg}); check the "
                            "API key and secret, their permissions and IP whitelist")
        if resp.status == 451:
            raise AdapterError(f"{self.name}: unavailable from this location (HTTP 451); US users use binance_us")
        raise AdapterError(f"{self.name}: {what} failed with HTTP {resp.status} (code {code}: {msg})")

    async def exchange_info(self) -> dict[str, s.SymbolInfo]:
        resp = await self.http.request("GET", "/api/v3/exchangeInfo", cost=WEIGHT["exchangeInfo"])
        return parse_exchange_info(self._check(resp, "exchangeInfo"))

    async def products(self) -> list[ProductStats]:
        info = await self.http.request("GET", "/api/v3/exchangeInfo", cost=WEIGHT["exchangeInfo"])
        info_body = self._check(info, "exchangeInfo")
        ticker = await self.http.request("GET", "/api/v3/ticker/24hr", cost=WEIGHT["ticker24hAll"])
        return parse_products(info_body, self._check(ticker, "ticker/24hr"), self.name)

    async def candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        step = timeframe_ms(timeframe)
        out: dict[int, Candle] = {}
        cursor = start_ms
        while cursor < end_ms:
            params = {"symbol": symbol, "interval": timeframe, "startTime": cursor, "endTime": end_ms - 1,
                      "limit": MAX_KLINES_PER_REQUEST}
            resp = await self.http.request("GET", "/api/v3/klines", params, cost=WEIGHT["klines"])
            candles, bad = parse_klines(self._check(resp, "klines", symbol), step)
            if bad:
                log.warning("%s: %d unusable kline rows for %s skipped", self.name, bad, symbol)
            for c in candles:
                if start_ms <= c.timestamp < end_ms:
                    out[c.timestamp] = c
            if len(candles) < MAX_KLINES_PER_REQUEST or not candles:
                break
            cursor = candles[-1].timestamp + step
        return [out[t] for t in sorted(out)]

    async def balances(self, credentials: Credentials) -> list[Balance]:
        resp = await self.http.request("GET", "/api/v3/account", cost=WEIGHT["account"],
                                       sign=signer(credentials))
        return parse_account(self._check(resp, "account"))
