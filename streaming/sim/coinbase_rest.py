"""Coinbase Advanced Trade REST: products, candles, accounts, best bid/ask."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from streaming.sim import formats as fm
from streaming.sim.auth import verify_coinbase_jwt
from streaming.sim.binance_rest import json_response
from streaming.sim.coinbase_ws import CoinbaseHub
from streaming.sim.market import UnknownSimSymbol
from streaming.sim.recordings import coinbase_accounts
from streaming.sim.series import FIVE_MIN_MS

PREFIX = "/api/v3/brokerage"
GRANULARITY_MS = {
    "FIVE_MINUTE": 300_000, "FIFTEEN_MINUTE": 900_000, "THIRTY_MINUTE": 1_800_000, "ONE_HOUR": 3_600_000,
    "TWO_HOUR": 7_200_000, "FOUR_HOUR": 14_400_000, "SIX_HOUR": 21_600_000, "ONE_DAY": 86_400_000,
}
MAX_CANDLES = 300


def _error(status: int, error: str, message: str, details: str = "") -> web.Response:
    return json_response(fm.cb_error(error, message, details), status=status)


class CoinbaseRest:
    def __init__(self, hub: CoinbaseHub, key_name: str, public_key: ec.EllipticCurvePublicKey) -> None:
        self.hub = hub
        self.market = hub.market
        self.key_name = key_name
        self.public_key = public_key
        self._accounts: list[dict[str, Any]] | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/market/products", self.products),
            web.get(f"{PREFIX}/market/products/{{product_id}}", self.product),
            web.get(f"{PREFIX}/market/products/{{product_id}}/candles", self.candles),
            web.get(f"{PREFIX}/accounts", self.accounts),
            web.get(f"{PREFIX}/best_bid_ask", self.best_bid_ask),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/api/"):
            self.hub.stats["rest_requests"] += 1
            if self.hub.rest_delay:
                await asyncio.sleep(self.hub.rest_delay)
            if self.hub.rest_429_left > 0:
                self.hub.rest_429_left -= 1
                resp = _error(429, "RATE_LIMIT_EXCEEDED", "Too many requests", "injected by the simulator")
                resp.headers["Retry-After"] = str(self.hub.rest_retry_after)
                return resp
        return await handler(request)

    # ---- public -------------------------------------------------------------------------------

    def _synthetic_product(self, product_id: str, now_ms: int) -> dict[str, Any]:
        base, quote = self.market.assets("coinbase", product_id)
        st = self.market.stats_24h("coinbase", product_id, now_ms)
        dec = self.market.decimals("coinbase", product_id)
        p = self.market.template_product()
        change = (st["last"] - st["open"]) / st["open"] * 100 if st["open"] else 0.0
        p.update({
            "product_id": product_id, "price": fm.cb_number(st["last"], dec),
            "price_percentage_change_24h": f"{change:.14f}", "volume_24h": fm.cb_number(st["volume"]),
            "volume_percentage_change_24h": "0", "base_increment": "0.00000001",
            "quote_increment": fm.cb_number(10.0 ** -dec, dec), "price_increment": fm.cb_number(10.0 ** -dec, dec),
            "base_name": base, "quote_name": quote, "status": "online", "trading_disabled": False,
            "is_disabled": False, "product_type": "SPOT", "quote_currency_id": quote, "base_currency_id": base,
            "alias": "", "alias_to": [], "base_display_symbol": base, "quote_display_symbol": quote,
            "display_name": product_id, "approximate_quote_24h_volume": f"{st['quote_volume']:.2f}",
            "high_24h": fm.cb_number(st["high"], dec), "low_24h": fm.cb_number(st["low"], dec),
            "mid_market_price": "",
        })
        return p

    def _all_products(self) -> list[dict[str, Any]]:
        now = self.hub.clock.now_ms()
        out = [self._synthetic_product(p, now) for p in self.market.symbols("coinbase")]
        out.extend(self.market.recorded_products().values())
        return out

    async def products(self, request: web.Request) -> web.Response:
        products = self._all_products()
        wanted = request.query.getall("product_ids", [])
        if wanted:
            products = [p for p in products if p["product_id"] in wanted]
        return json_response({"products": products, "num_products": len(products),
                                  "pagination": {"prev_cursor": "", "next_cursor": "", "has_next": False,
                                                 "has_prev": False}})

    async def product(self, request: web.Request) -> web.Response:
        pid = request.match_info["product_id"]
        if self.market.is_synthetic("coinbase", pid):
            return json_response(self._synthetic_product(pid, self.hub.clock.now_ms()))
        rec = self.market.recorded_products().get(pid)
        if rec is None:
            return _error(404, "NOT_FOUND", "ProductID is invalid", f"product {pid!r} not found")
        return json_response(rec)

    async def candles(self, request: web.Request) -> web.Response:
        pid = request.match_info["product_id"]
        q = request.query
        gran = q.get("granularity", "")
        step = GRANULARITY_MS.get(gran)
        if step is None:
            detail = ("ONE_MINUTE is not simulated (the simulator's finest bars are five minutes)"
                      if gran == "ONE_MINUTE" else f"granularity must be one of {', '.join(GRANULARITY_MS)}")
            return _error(400, "INVALID_ARGUMENT", f"invalid granularity {gran!r}", detail)
        now = self.hub.clock.now_ms()
        try:
            end_s = int(q["end"]) if "end" in q else now // 1000
            start_s = int(q["start"]) if "start" in q else end_s - (MAX_CANDLES - 1) * step // 1000
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "start and end must be UNIX seconds", "")
        start_ms, end_ms = start_s * 1000, end_s * 1000
        if end_ms < start_ms:
            return _error(400, "INVALID_ARGUMENT", "start must be before end", "")
        first = -(-start_ms // step) * step
        count = 0 if end_ms < first else (end_ms - first) // step + 1
        if count > MAX_CANDLES:
            msg = f"number of candles requested should be less than or equal to {MAX_CANDLES}"
            return _error(400, "INVALID_ARGUMENT", msg, msg)
        try:
            bars = self.market.history("coinbase", pid, step, start_ms, end_ms + 1, now)
        except UnknownSimSymbol:
            return _error(404, "NOT_FOUND", "ProductID is invalid", f"product {pid!r} not found")
        dec = self.market.decimals("coinbase", pid)
        return json_response({"candles": [fm.cb_rest_candle(b, dec) for b in reversed(bars)]})

    # ---- private ------------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _error(401, "UNAUTHENTICATED", "Unauthorized", "missing Authorization: Bearer <JWT>")
        hosts = (request.host, request.host.rsplit(":", 1)[0])
        reason = verify_coinbase_jwt(header[7:], self.public_key, self.key_name, request.method, hosts,
                                     request.path, self.market.config.wall_clock())
        if reason is not None:
            self.hub.warn("refused a private request: %s", reason)
            return _error(401, "UNAUTHENTICATED", "Unauthorized", reason)
        return None

    def accounts_list(self) -> list[dict[str, Any]]:
        if self._accounts is None:
            synthetic = []
            for i, sym in enumerate(self.market.symbols("coinbase")[:3], 1):
                base, _ = self.market.assets("coinbase", sym)
                value = f"{i * 1.5:.16f}"
                synthetic.append({
                    "uuid": f"00000000-0000-4000-8000-{i:012d}", "name": f"{base} Wallet", "currency": base,
                    "available_balance": {"value": value, "currency": base}, "default": True, "active": True,
                    "created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z",
                    "deleted_at": None, "type": "ACCOUNT_TYPE_CRYPTO", "ready": True,
                    "hold": {"value": "0.0000000000000000", "currency": base},
                })
            self._accounts = synthetic + coinbase_accounts(self.market.config.recordings)
        return self._accounts

    async def accounts(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        try:
            limit = int(request.query.get("limit", "49"))
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "limit must be an integer", "")
        if not 1 <= limit <= 250:
            return _error(400, "INVALID_ARGUMENT", "limit must be between 1 and 250", "")
        accounts = self.accounts_list()
        start = 0
        cursor = request.query.get("cursor")
        if cursor:
            index = {a["uuid"]: i for i, a in enumerate(accounts)}
            if cursor not in index:
                return _error(400, "INVALID_ARGUMENT", "invalid cursor", "")
            start = index[cursor]
        page = accounts[start:start + limit]
        has_next = start + limit < len(accounts)
        return json_response({"accounts": page, "has_next": has_next,
                                  "cursor": accounts[start + limit]["uuid"] if has_next else None,
                                  "size": len(page)})

    async def best_bid_ask(self, request: web.Request) -> web.Response:
        refused = self._auth(request)
        if refused is not None:
            return refused
        wanted = [p for v in request.query.getall("product_ids", []) for p in v.split(",") if p]
        products = wanted or self.market.symbols("coinbase")
        now = self.hub.clock.now_ms()
        stamp = dt.datetime.fromtimestamp(now / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        books = []
        for pid in products:
            if not self.market.known("coinbase", pid):
                continue
            bar = self.market.forming("coinbase", pid, FIVE_MIN_MS, now)
            dec = self.market.decimals("coinbase", pid)
            price = bar.c if bar is not None else self.market.series("coinbase", pid).bar(
                self.market.series("coinbase", pid).index_of(now)).o
            tick = 10.0 ** -dec
            books.append({"product_id": pid,
                          "bids": [{"price": fm.cb_number(price - tick, dec), "size": "0.5"}],
                          "asks": [{"price": fm.cb_number(price + tick, dec), "size": "0.5"}],
                          "time": stamp})
        return json_response({"pricebooks": books})
