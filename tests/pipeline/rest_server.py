"""A local exchange REST server on 127.0.0.1 (Binance klines, Coinbase candles) serving given candles,
so the real adapters' REST clients are exercised end to end."""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from streaming.models import Candle
from streaming.timeframes import timeframe_ms

COINBASE_TF = {"FIVE_MINUTE": "5m", "FIFTEEN_MINUTE": "15m", "ONE_HOUR": "1h", "FOUR_HOUR": "4h", "ONE_DAY": "1d"}


class RestServer:
    def __init__(self, data: dict[tuple[str, str], list[Candle]]) -> None:
        self.data = data  # (symbol, timeframe) -> candles oldest first
        self.requests: Counter[str] = Counter()
        self.fail: dict[str, int] = {}  # "SYMBOL tf" -> the HTTP status its klines get instead (429: Retry-After 0)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _klines(self, request: web.Request) -> web.Response:
        q = request.query
        key = (q["symbol"], q["interval"])
        self.requests[f"{key[0]} {key[1]}"] += 1
        status = self.fail.get(f"{key[0]} {key[1]}")
        if status is not None:
            return web.json_response({"code": -1003, "msg": "failing"}, status=status, headers={"Retry-After": "0"})
        if not any(s == key[0] for s, _ in self.data):
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        start, end, limit = int(q["startTime"]), int(q["endTime"]), int(q.get("limit", 500))
        rows = [c for c in self.data.get(key, []) if start <= c.timestamp <= end][:limit]
        step = timeframe_ms(key[1])
        return web.json_response([[c.timestamp, str(c.open), str(c.high), str(c.low), str(c.close), str(c.volume),
                                   c.timestamp + step - 1, "0", 1, "0", "0", "0"] for c in rows])

    async def _coinbase(self, request: web.Request) -> web.Response:
        sym = request.match_info["product"]
        tf = COINBASE_TF[request.query["granularity"]]
        self.requests[f"{sym} {tf}"] += 1
        start, end = int(request.query["start"]) * 1000, int(request.query["end"]) * 1000
        rows = [c for c in self.data.get((sym, tf), []) if start <= c.timestamp <= end]
        return web.json_response({"candles": [
            {"start": str(c.timestamp // 1000), "low": str(c.low), "high": str(c.high), "open": str(c.open),
             "close": str(c.close), "volume": str(c.volume)} for c in reversed(rows)]})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/brokerage/market/products/{product}/candles", self._coinbase)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
