"""Coinbase REST: pure body parsers plus a thin async client (public market data, accounts)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec

from streaming.adapters.base import AdapterError, AuthError, Credentials, UnknownSymbolError
from streaming.adapters.coinbase import schemas as s
from streaming.adapters.coinbase.auth import build_jwt, host_of, load_key
from streaming.adapters.coinbase.parse import rest_candle
from streaming.adapters.http import HttpClient, Response
from streaming.adapters.numbers import num_or_zero
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.validate import candles_from_rows
from streaming.models import Balance, Candle, ProductStats
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)

GRANULARITY = {"1m": "ONE_MINUTE", "5m": "FIVE_MINUTE", "15m": "FIFTEEN_MINUTE", "30m": "THIRTY_MINUTE",
               "1h": "ONE_HOUR", "2h": "TWO_HOUR", "4h": "FOUR_HOUR", "6h": "SIX_HOUR", "1d": "ONE_DAY"}
MAX_CANDLES_PER_REQUEST = 300
PRODUCTS_PATH = "/api/v3/brokerage/market/products"
ACCOUNTS_PATH = "/api/v3/brokerage/accounts"


def parse_products(body: bytes, exchange: str = "coinbase") -> list[ProductStats]:
    try:
        products = msgspec.json.decode(body, type=s.RestProducts).products
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"{exchange}: unexpected products response: {exc}") from None
    out = []
    for p in products:
        price = num_or_zero(p.price)
        volume = num_or_zero(p.volume_24h)
        quote_volume = num_or_zero(p.approximate_quote_24h_volume) or volume * price
        base, _, quote = p.product_id.partition("-")
        out.append(ProductStats(
            exchange=exchange, symbol=p.product_id, base=p.base_currency_id or base,
            quote=p.quote_currency_id or quote, price=price, volume_24h=volume,
            quote_volume_24h=quote_volume,
            tradable=p.status == "online" and not p.trading_disabled and not p.is_disabled,
            status=p.status or "unknown", alias_of=p.alias or None))
    return out


def parse_candles(body: bytes, step_ms: int) -> tuple[list[Candle], int]:
    """Candles oldest first (the API sends newest first) and the number of unusable rows skipped."""
    try:
        rows = msgspec.json.decode(body, type=s.RestCandles).candles
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"coinbase: unexpected candles response: {exc}") from None
    tf_step = step_ms if step_ms <= 21_600_000 else None
    return candles_from_rows(rows, lambda row: rest_candle(row, tf_step))


def parse_accounts(body: bytes) -> tuple[list[Balance], bool, str | None]:
    try:
        page = msgspec.json.decode(body, type=s.RestAccounts)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AdapterError(f"coinbase: unexpected accounts response: {exc}") from None
    balances = [Balance(asset=a.currency, free=num_or_zero(a.available_balance.value),
                        locked=num_or_zero(a.hold.value) if a.hold is not None else 0.0)
                for a in page.accounts]
    return balances, page.has_next, page.cursor or None


def _error_text(body: bytes) -> str:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)[:200]
    return str(data)[:200]


CANDLES_ENDPOINT = "/api/v3/brokerage/market/products/{product_id}/candles"


class CoinbaseRest:
    def __init__(self, rest_url: str, api_limits: dict[str, Any], name: str = "coinbase",
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.name = name
        self.rest_url = rest_url
        public = TokenBucket(float(api_limits.get("rest_public_per_second", 10)))
        private = TokenBucket(float(api_limits.get("rest_private_per_second", 30)))
        self.public = HttpClient(rest_url, name, throttle=public.acquire)
        self.private = HttpClient(rest_url, name, throttle=private.acquire)

    async def close(self) -> None:
        await self.public.close()
        await self.private.close()

    def _check(self, resp: Response, what: str, symbol: str | None = None) -> bytes:
        if resp.status == 200:
            return resp.body
        text = _error_text(resp.body)
        if resp.status in (401, 403):
            raise AuthError(f"{self.name}: {what} refused (HTTP {resp.status}: {text}); check the API key "
                            "name and private key, and that the key has the view permission")
        if symbol is not None and resp.status in (400, 404):
            raise UnknownSymbolError(f"{self.name}: unknown product {symbol!r} (HTTP {resp.status}: {text})")
        raise AdapterError(f"{self.name}: {what} failed with HTTP {resp.status}: {text}")

    async def products(self) -> list[ProductStats]:
        resp = await self.public.request("GET", PRODUCTS_PATH)
        return parse_products(self._check(resp, "products"), self.name)

    async def candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        """All candles with open time in [start_ms, end_ms), oldest first, in 300-bucket pages."""
        try:
            granularity = GRANULARITY[timeframe]
        except KeyError:
            raise AdapterError(f"{self.name}: timeframe {timeframe!r} not available; one of "
                               f"{', '.join(GRANULARITY)}") from None
        step = timeframe_ms(timeframe)
        first = start_ms - start_ms % step + (step if start_ms % step else 0)
        path = f"{PRODUCTS_PATH}/{symbol}/candles"
        out: dict[int, Candle] = {}
        page_start = first
        while page_start < end_ms:
            page_end = min(end_ms, page_start + MAX_CANDLES_PER_REQUEST * step)
            # `end` is inclusive on Coinbase: stop one second before the next page's first bucket
            params = {"granularity": granularity, "start": str(page_start // 1000),
                      "end": str((page_end - 1) // 1000)}
            resp = await self.public.request("GET", path, params, endpoint=CANDLES_ENDPOINT)
            candles, bad = parse_candles(self._check(resp, "candles", symbol), step)
            if bad:
                log.warning("%s: %d unusable candle rows for %s skipped", self.name, bad, symbol)
            for c in candles:
                if start_ms <= c.timestamp < end_ms:
                    out[c.timestamp] = c
            page_start = page_end
        return [out[t] for t in sorted(out)]

    async def balances(self, credentials: Credentials) -> list[Balance]:
        key = load_key(credentials)
        host = host_of(self.rest_url)

        def sign(method: str, path: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
            token = build_jwt(credentials.api_key, key, method, host, path)
            return params, {"Authorization": f"Bearer {token}"}

        out: list[Balance] = []
        cursor: str | None = None
        for _ in range(1000):  # a server that never stops paginating must not hang us
            params = {"limit": "250"}
            if cursor:
                params["cursor"] = cursor
            resp = await self.private.request("GET", ACCOUNTS_PATH, params, sign=sign)
            balances, has_next, cursor = parse_accounts(self._check(resp, "accounts"))
            out.extend(balances)
            if not has_next or not cursor:
                break
        return out
