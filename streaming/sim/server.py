"""ExchangeSimulator: Coinbase, Binance and Binance.US served on loopback from one simulated market."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from streaming.clock import encode_sim_clock
from streaming.models import Candle
from streaming.sim.binance_rest import BinanceRest, json_response
from streaming.sim.binance_ws import BinanceHub
from streaming.sim.clock import SimClock
from streaming.sim.coinbase_rest import CoinbaseRest
from streaming.sim.coinbase_ws import CoinbaseHub
from streaming.sim.config import EXCHANGES, ExchangeUrls, SimConfig
from streaming.sim.faults import FaultError, FaultRecord, validate
from streaming.sim.market import Market, check_exchange
from streaming.sim.recordings import read_frames

log = logging.getLogger(__name__)


class ExchangeSimulator:
    """`async with ExchangeSimulator(SimConfig(...)) as sim:` serves all three exchanges."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        start = self.config.start_ms if self.config.start_ms is not None else int(time.time() * 1000)
        self.clock = SimClock(start, self.config.speed)
        self.market = Market(self.config, self.clock)
        self.hubs: dict[str, CoinbaseHub | BinanceHub] = {
            "coinbase": CoinbaseHub("coinbase", self.market, self.clock, self.config),
            "binance": BinanceHub("binance", self.market, self.clock, self.config),
            "binance_us": BinanceHub("binance_us", self.market, self.clock, self.config),
        }
        self.urls: dict[str, ExchangeUrls] = {}
        self.faults: list[FaultRecord] = []
        self._runners: list[web.AppRunner] = []
        self._coinbase_creds = self._coinbase_key()
        self._binance_creds = {
            "binance": (self.config.binance_api_key or secrets.token_hex(32),
                        self.config.binance_api_secret or secrets.token_hex(32)),
            "binance_us": (self.config.binance_api_key or secrets.token_hex(32),
                           self.config.binance_api_secret or secrets.token_hex(32)),
        }

    def _coinbase_key(self) -> tuple[str, str, ec.EllipticCurvePublicKey]:
        name = self.config.coinbase_key_name or f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
        if self.config.coinbase_private_key_pem:
            key = serialization.load_pem_private_key(self.config.coinbase_private_key_pem.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("coinbase_private_key_pem must be an EC private key")
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
        return name, pem, key.public_key()

    # ---- lifecycle ----------------------------------------------------------------------------

    def _app(self, exchange: str) -> web.Application:
        hub = self.hubs[exchange]
        if exchange == "coinbase":
            assert isinstance(hub, CoinbaseHub)
            rest: Any = CoinbaseRest(hub, self._coinbase_creds[0], self._coinbase_creds[2])
            ws_routes = [web.get("/", hub.handle_ws), web.get("/ws", hub.handle_ws)]
        else:
            assert isinstance(hub, BinanceHub)
            rest = BinanceRest(hub, *self._binance_creds[exchange])
            ws_routes = [web.get("/ws", hub.handle_ws), web.get("/ws/{tail:.*}", hub.handle_ws),
                         web.get("/stream", hub.handle_ws)]
        app = web.Application(middlewares=[rest.middleware], client_max_size=1 << 20)
        app.add_routes(ws_routes + rest.routes() + self._control_routes(exchange))
        return app

    async def start(self) -> ExchangeSimulator:
        for ex in EXCHANGES:
            runner = web.AppRunner(self._app(ex), access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.config.host, self.config.ports.get(ex, 0), reuse_address=True)
            await site.start()
            self._runners.append(runner)
            host, port = runner.addresses[0][:2]
            self.urls[ex] = ExchangeUrls(ws_url=f"ws://{host}:{port}", rest_url=f"http://{host}:{port}")
        log.info("exchange simulator up: %s", {k: v.as_dict() for k, v in self.urls.items()})
        return self

    async def stop(self) -> None:
        for hub in self.hubs.values():
            await hub.close_all()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> ExchangeSimulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- the Python API -----------------------------------------------------------------------

    def symbols(self, exchange: str) -> list[str]:
        return self.market.symbols(exchange)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def clock_reading(self) -> tuple[int, int, float]:
        """(simulated ms, wall-clock ms, speed), read together: another process that starts from
        them runs the same clock (LIVERMORE_SIM_CLOCK, streaming.clock)."""
        return self.clock.now_ms(), time.time_ns() // 1_000_000, self.clock.speed

    def clock_setting(self) -> str:
        """The LIVERMORE_SIM_CLOCK value that gives a worker or CLI process this simulator's clock."""
        return encode_sim_clock(*self.clock_reading())

    def truth(self, exchange: str, symbol: str, timeframe: str) -> list[Candle]:
        """Closed bars up to the simulated now (history included), as the exchange serves them."""
        return self.market.truth(check_exchange(exchange), symbol, timeframe)

    def credentials(self, exchange: str) -> tuple[str, str]:
        """Coinbase: (API key name, PEM EC private key); Binance(.US): (API key, secret)."""
        if check_exchange(exchange) == "coinbase":
            return self._coinbase_creds[0], self._coinbase_creds[1]
        return self._binance_creds[exchange]

    def stats(self, exchange: str) -> dict[str, Any]:
        hub = self.hubs[check_exchange(exchange)]
        return {**hub.stats, "open_connections": sum(1 for c in hub.connections if not c.closed)}

    async def inject(self, kind: str, /, exchange: str = "coinbase", **params: Any) -> FaultRecord:
        """Inject a fault (see streaming.sim.faults.FAULT_KINDS); raises FaultError on a bad request."""
        try:
            check_exchange(exchange)
        except ValueError as exc:
            raise FaultError(str(exc)) from None
        clean = validate(kind, exchange, params)
        if kind == "stall_symbol" and not self.market.known(exchange, clean["symbol"]):
            raise FaultError(f"{exchange} has no symbol {clean['symbol']!r}; one of "
                             f"{', '.join(self.symbols(exchange)[:10])}")
        reached = self.hubs[exchange].apply(kind, clean)
        record = FaultRecord(len(self.faults) + 1, kind, exchange, clean, self.clock.now_ms(), time.time(), reached)
        self.faults.append(record)
        log.info("simulator fault #%d %s on %s %s (%d connections)", record.seq, kind, exchange, clean, reached)
        return record

    def fault_log(self) -> list[dict[str, Any]]:
        return [f.as_dict() for f in self.faults]

    async def replay(self, path: str | Path, exchange: str = "coinbase", pace: float = 0.0,
                     rewrite_sequence: bool = True) -> int:
        """Send a recording's received frames, in file order, to the clients subscribed to them.
        `pace` > 0 keeps the recorded spacing divided by `pace`; returns frames delivered."""
        frames = read_frames(Path(path))
        hub = self.hubs[check_exchange(exchange)]
        delivered = 0
        prev: float | None = None
        for fr in frames:
            if pace > 0 and prev is not None and fr.ts > prev:
                await asyncio.sleep((fr.ts - prev) / pace)
            prev = fr.ts
            if isinstance(hub, CoinbaseHub):
                delivered += hub.deliver_recorded(fr.text, rewrite_sequence)
            else:
                delivered += hub.deliver_recorded(fr.text)
            await asyncio.sleep(0)
        return delivered

    # ---- control endpoint ---------------------------------------------------------------------

    def _control_routes(self, exchange: str) -> list[web.RouteDef]:
        async def fault(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                return json_response({"error": "body must be a JSON object"}, 400)
            if not isinstance(body, dict) or not isinstance(body.get("fault", body.get("kind")), str):
                return json_response({"error": "body must be a JSON object with a string 'fault' (or 'kind')"}, 400)
            params = dict(body)
            fault_kind = params.pop("fault", None) or params.pop("kind")
            if "malformed_kind" in params:
                params["kind"] = params.pop("malformed_kind")
            target = params.pop("exchange", exchange)
            try:
                record = await self.inject(fault_kind, exchange=target, **params)
            except FaultError as exc:
                return json_response({"error": str(exc)}, 400)
            return json_response({"ok": True, "fault": record.as_dict()})

        async def faults(request: web.Request) -> web.Response:
            return json_response(self.fault_log())

        async def info(request: web.Request) -> web.Response:
            return json_response({"now_ms": self.now_ms(), "speed": self.clock.speed,
                                  "urls": {k: v.as_dict() for k, v in self.urls.items()},
                                  "symbols": {ex: self.symbols(ex) for ex in EXCHANGES},
                                  "stats": {ex: self.stats(ex) for ex in EXCHANGES}})

        async def truth(request: web.Request) -> web.Response:
            q = request.query
            try:
                candles = self.truth(q.get("exchange", exchange), q["symbol"], q.get("timeframe", "5m"))
            except KeyError as exc:
                return json_response({"error": f"missing or unknown: {exc}"}, 400)
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            limit = int(q.get("limit", "0") or 0)
            rows = candles[-limit:] if limit > 0 else candles
            return json_response([[c.timestamp, c.open, c.high, c.low, c.close, c.volume] for c in rows])

        return [web.post("/_sim/fault", fault), web.get("/_sim/faults", faults), web.get("/_sim/info", info),
                web.get("/_sim/truth", truth)]
