"""Run the simulator in a background thread with its own event loop, for synchronous code (pytest)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streaming.models import Candle
from streaming.sim.config import ExchangeUrls, SimConfig
from streaming.sim.faults import FaultRecord
from streaming.sim.server import ExchangeSimulator


class SimulatorHandle:
    """The simulator's API, callable from any thread."""

    def __init__(self, sim: ExchangeSimulator, loop: asyncio.AbstractEventLoop) -> None:
        self.sim = sim
        self.loop = loop
        self.config = sim.config

    @property
    def urls(self) -> dict[str, ExchangeUrls]:
        return self.sim.urls

    def symbols(self, exchange: str) -> list[str]:
        return self.sim.symbols(exchange)

    def now_ms(self) -> int:
        return self.sim.now_ms()

    def clock_setting(self) -> str:
        return self.sim.clock_setting()

    def truth(self, exchange: str, symbol: str, timeframe: str) -> list[Candle]:
        return self.sim.truth(exchange, symbol, timeframe)

    def credentials(self, exchange: str) -> tuple[str, str]:
        return self.sim.credentials(exchange)

    def stats(self, exchange: str) -> dict[str, Any]:
        return self._call(self._sync(self.sim.stats, exchange))

    def fault_log(self) -> list[dict[str, Any]]:
        return self.sim.fault_log()

    def inject(self, kind: str, /, exchange: str = "coinbase", **params: Any) -> FaultRecord:
        return self._call(self.sim.inject(kind, exchange=exchange, **params))

    def replay(self, path: str | Path, exchange: str = "coinbase", pace: float = 0.0,
               rewrite_sequence: bool = True) -> int:
        return self._call(self.sim.replay(path, exchange, pace, rewrite_sequence), timeout=600)

    @staticmethod
    async def _sync(fn: Any, *args: Any) -> Any:
        return fn(*args)

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextmanager
def running_simulator(config: SimConfig | None = None) -> Iterator[SimulatorHandle]:
    """`with running_simulator(SimConfig(...)) as sim:` the servers run until the block ends."""
    loop = asyncio.new_event_loop()
    sim = ExchangeSimulator(config)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(sim.stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=run, name="exchange-simulator", daemon=True)
    thread.start()
    started.wait(60)
    if failure:
        thread.join(5)
        loop.close()
        raise failure[0]
    try:
        yield SimulatorHandle(sim, loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
