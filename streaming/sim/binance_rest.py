"""Binance spot REST: exchangeInfo, ticker/24hr, klines, account; request weights and bans."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web

from streaming.sim import formats as fm
from streaming.sim.auth import split_signature, verify_binance_signature
from streaming.sim.binance_ws import BinanceHub
from streaming.sim.limits import WeightLimiter
from streaming.sim.market import INTERVAL_MS, UnknownSimSymbol

WEIGHTS = {"/api/v3/exchangeInfo": 20, "/api/v3/ticker/24hr": 80, "/api/v3/klines": 2, "/api/v3/account": 20,
           "/api/v3/ping": 1, "/api/v3/time": 1}


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, code: int, msg: str) -> web.Response:
    return json_response(fm.bn_error(code, msg), status)


def _missing(name: str) -> web.Response:
    return _error(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


class BinanceRest:
    def __init__(self, hub: BinanceHub, api_key: str, api_secret: str) -> None:
        self.hub = hub
        self.market = hub.market
        self.api_key = api_key
        self.api_secret = api_secret
        cfg = hub.config
        self.limiter = WeightLimiter(cfg.binance_weight_per_minute, cfg.binance_ban_after, cfg.binance_ban_seconds)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v3/ping", self.ping),
            web.get("/api/v3/time", self.time),
            web.get("/api/v3/exchangeInfo", self.exchange_info),
            web.get("/api/v3/ticker/24hr", self.ticker),
            web.get("/api/v3/klines", self.klines),
            web.get("/api/v3/account", self.account),
        ]

    def _weight(self, request: web.Request) -> int:
        path = request.path
        if path == "/api/v3/ticker/24hr":
            if "symbol" in request.query:
                return 2
            if "symbols" in request.query:
                return 2 * max(1, request.query["symbols"].count(",") + 1)
        return WEIGHTS.get(path, 1)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        self.hub.stats["rest_requests"] += 1
        if self.hub.rest_delay:
            await asyncio.sleep(self.hub.rest_delay)
        if self.hub.rest_429_left > 0:
            self.hub.rest_429_left -= 1
            resp = _error(429, -1003, "Too many requests; injected by the simulator.")
            resp.headers["Retry-After"] = str(self.hub.rest_retry_after)
            resp.headers["X-MBX-USED-WEIGHT-1M"] = str(self.limiter.used)
            return resp
        verdict = self.limiter.check(self._weight(request), self.hub.config.wall_clock())
        if verdict.status == 418:
            resp = _error(418, -1003, f"Way too much request weight used; IP banned until "
                                      f"{int(self.hub.config.wall_clock() + verdict.retry_after) * 1000}.")
        elif verdict.status == 429:
            resp = _error(429, -1003, f"Too much request weight used; current limit is {self.limiter.limit} "
                                      "request weight per 1 MINUTE. Please use WebSocket Streams for live "
                                      "updates to avoid polling the API.")
        else:
            resp = await handler(request)
        if verdict.retry_after:
            resp.headers["Retry-After"] = str(verdict.retry_after)
        resp.headers["X-MBX-USED-WEIGHT-1M"] = str(verdict.used)
        return resp

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.hub.clock.now_ms()})

    # ---- market data --------------------------------------------------------------------------

    def _synthetic_info(self, symbol: str) -> dict[str, Any]:
        base, quote = self.market.assets(self.hub.exchange, symbol)
        dec = self.market.decimals(self.hub.exchange, symbol)
        info = self.market.template_symbol()
        info.update({"symbol": symbol, "status": "TRADING", "baseAsset": base, "quoteAsset": quote,
                     "permissions": ["SPOT"], "isMarginTradingAllowed": False})
        for f in info.get("filters", []):
            if f.get("filterType") == "PRICE_FILTER":
                f["tickSize"] = fm.bn_number(10.0 ** -dec)
        return info

    async def exchange_info(self, request: web.Request) -> web.Response:
        wanted = request.query.get("symbol")
        ex = self.hub.exchange
        symbols = [self._synthetic_info(s) for s in self.market.symbols(ex)]
        symbols.extend(self.market.recorded_symbols().values())
        if wanted is not None:
            symbols = [s for s in symbols if s["symbol"] == wanted]
            if not symbols:
                return _error(400, -1121, "Invalid symbol.")
        head = dict(self.market.exchange_info_head) or {"timezone": "UTC", "rateLimits": [], "exchangeFilters": []}
        head["serverTime"] = self.hub.clock.now_ms()
        head["rateLimits"] = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                               "limit": self.limiter.limit}, *[r for r in head.get("rateLimits", [])
                                                               if r.get("rateLimitType") != "REQUEST_WEIGHT"]]
        return json_response({**head, "symbols": symbols})

    def _ticker(self, symbol: str, now_ms: int) -> dict[str, Any]:
        st = self.market.stats_24h(self.hub.exchange, symbol, now_ms)
        change = st["last"] - st["open"]
        pct = change / st["open"] * 100 if st["open"] else 0.0
        wavg = st["quote_volume"] / st["volume"] if st["volume"] else st["last"]
        n = fm.bn_number
        return {"symbol": symbol, "priceChange": n(change), "priceChangePercent": f"{pct:.3f}",
                "weightedAvgPrice": n(wavg), "prevClosePrice": n(st["open"]), "lastPrice": n(st["last"]),
                "lastQty": n(0.5), "bidPrice": n(st["last"]), "bidQty": n(1.0), "askPrice": n(st["last"]),
                "askQty": n(1.0), "openPrice": n(st["open"]), "highPrice": n(st["high"]), "lowPrice": n(st["low"]),
                "volume": n(st["volume"]), "quoteVolume": n(st["quote_volume"]), "openTime": now_ms - 86_400_000,
                "closeTime": now_ms, "firstId": 0, "lastId": st["count"], "count": st["count"]}

    async def ticker(self, request: web.Request) -> web.Response:
        now = self.hub.clock.now_ms()
        ex = self.hub.exchange
        if "symbol" in request.query:
            sym = request.query["symbol"]
            if not self.market.known(ex, sym):
                return _error(400, -1121, "Invalid symbol.")
            return json_response(self._ticker(sym, now))
        if "symbols" in request.query:
            try:
                wanted = orjson.loads(request.query["symbols"])
            except orjson.JSONDecodeError:
                return _error(400, -1100, "Illegal characters found in parameter 'symbols'.")
            if not isinstance(wanted, list) or not all(isinstance(s, str) for s in wanted):
                return _error(400, -1100, "Illegal characters found in parameter 'symbols'.")
            if any(not self.market.known(ex, s) for s in wanted):
                return _error(400, -1121, "Invalid symbol.")
        else:
            wanted = [*self.market.symbols(ex), *self.market.recorded_symbols()]
        return json_response([self._ticker(s, now) for s in wanted])

    async def klines(self, request: web.Request) -> web.Response:
        q = request.query
        symbol = q.get("symbol")
        if not symbol:
            return _missing("symbol")
        interval = q.get("interval")
        if not interval:
            return _missing("interval")
        step = INTERVAL_MS.get(interval)
        if step is None:
            return _error(400, -1120, "Invalid interval.")
        try:
            limit = int(q.get("limit", "500"))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            return _error(400, -1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= 1000:
            return _error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        now = self.hub.clock.now_ms()
        ex = self.hub.exchange
        try:
            if start is not None:
                stop = now + 1 if end is None else min(end + 1, now + 1)
                stop = min(stop, start + limit * step)
                bars = self.market.history(ex, symbol, step, start, stop, now)[:limit]
            else:
                top = now if end is None else min(end, now)
                bars = self.market.history(ex, symbol, step, top - limit * step + 1, top + 1, now)[-limit:]
        except UnknownSimSymbol:
            return _error(400, -1121, "Invalid symbol.")
        return json_response([fm.bn_kline_row(b, step) for b in bars])

    # ---- private ------------------------------------------------------------------------------

    async def account(self, request: web.Request) -> web.Response:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            return _error(401, -2014, "API-key format invalid.")
        if key != self.api_key:
            self.hub.warn("refused an unknown API key")
            return _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        q = request.query
        payload, signature = split_signature(request.rel_url.raw_query_string)
        if "timestamp" not in q:
            return _missing("timestamp")
        if not signature:
            return _missing("signature")
        try:
            ts = int(q["timestamp"])
            window = int(q.get("recvWindow", "5000"))
        except ValueError:
            return _error(400, -1100, "Illegal characters found in parameter 'timestamp'.")
        if window > 60_000:
            return _error(400, -1131, "recvWindow must be less than 60000")
        server_ms = int(self.hub.config.wall_clock() * 1000)
        if ts > server_ms + 1000 or server_ms - ts > window:
            return _error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        if not verify_binance_signature(self.api_secret, payload, signature):
            self.hub.warn("refused a bad signature")
            return _error(400, -1022, "Signature for this request is not valid.")
        balances = [{"asset": "USDT" if self.hub.exchange == "binance" else "USD", "free": "1000.00000000",
                     "locked": "0.00000000"}, {"asset": "BTC", "free": "0.01000000", "locked": "0.00000000"}]
        for i, sym in enumerate(self.market.symbols(self.hub.exchange)[:3], 1):
            base, _ = self.market.assets(self.hub.exchange, sym)
            balances.append({"asset": base, "free": fm.bn_number(i * 2.5), "locked": fm.bn_number(i * 0.5)})
        balances.append({"asset": "BNB", "free": "0.00000000", "locked": "0.00000000"})
        return json_response({
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                                "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": server_ms,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 354937868,
        })
