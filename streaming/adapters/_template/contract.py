"""The contract every exchange adapter meets, as checks a test runs against it (README.md).

`check_capabilities` is static; `check_parser` runs the frame parser on real recorded frames and
on hostile ones; `check_rest` and `check_live` need a running exchange (tests use the local
simulator). Each raises ContractViolation naming what is wrong.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streaming.adapters.base import (
    AdapterError,
    ConnectionState,
    ExchangeAdapter,
    UnknownSymbolError,
)
from streaming.adapters.skips import KINDS, BadFrame
from streaming.models import Candle, CandleUpdate, ProductStats
from streaming.timeframes import TIMEFRAME_MS, TIMEFRAMES

REQUIRED_COUNTERS = ("frames", "skipped", "skipped_total", "symbols")
HOSTILE_FRAMES: tuple[bytes, ...] = (
    b"", b"null", b"[]", b"{}", b"\xff\xfe\xfd", b'{"a":"\xed\xa0\x80"}', b"[" * 1000 + b"]" * 1000,
    b'{"x":' * 1000 + b"1" + b"}" * 1000, b'{"e":' + b"9" * 5000 + b"}", b'{"e":1e999}', b"x" * 2_000_000,
)


class ContractViolation(AssertionError):
    pass


def _require(ok: bool, what: str) -> None:
    if not ok:
        raise ContractViolation(what)


def check_capabilities(cls: type[ExchangeAdapter]) -> None:
    name = cls.__name__
    _require(not inspect.isabstract(cls), f"{name} leaves abstract methods unimplemented")
    for attr in ("native_timeframes", "rest_timeframes", "exchange_intervals", "default_limits"):
        _require(hasattr(cls, attr), f"{name} does not declare {attr}")
    native, rest = cls.native_timeframes, cls.rest_timeframes
    _require(isinstance(native, frozenset) and bool(native) and native <= set(TIMEFRAMES),
             f"{name}.native_timeframes must be a non-empty frozenset of {TIMEFRAMES}, got {native!r}")
    _require("5m" in native, f"{name}.native_timeframes must include 5m (the others are aggregated from it)")
    _require(set(TIMEFRAMES) <= rest <= set(TIMEFRAME_MS),
             f"{name}.rest_timeframes must cover {TIMEFRAMES} within {sorted(TIMEFRAME_MS)}, got {sorted(rest)}")
    _require(native <= cls.exchange_intervals, f"{name}.exchange_intervals must name its native timeframes")
    limits = cls.default_limits
    _require(isinstance(limits, Mapping) and all(
        isinstance(k, str) and not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) and v > 0
        for k, v in limits.items()), f"{name}.default_limits must map names to positive numbers, got {limits!r}")
    per_conn, lifetime = cls.max_streams_per_connection, cls.connection_lifetime_s
    _require(per_conn is None or (isinstance(per_conn, int) and per_conn >= 1),
             f"{name}.max_streams_per_connection must be None or a positive int")
    _require(lifetime is None or lifetime > 0, f"{name}.connection_lifetime_s must be None or positive")


def check_parser(parse: Callable[[bytes], Any], recorded: Iterable[str | bytes]) -> None:
    """Real frames parse; hostile ones raise BadFrame of a known kind and nothing else."""
    frames = list(recorded)
    _require(bool(frames), "no recorded frames to check the parser with")
    for raw in frames:
        try:
            parse(raw if isinstance(raw, bytes) else raw.encode())
        except BadFrame as bad:
            raise ContractViolation(f"a recorded frame was refused ({bad}): {str(raw)[:200]}") from None
    for raw in HOSTILE_FRAMES:
        try:
            parse(raw)
        except BadFrame as bad:
            _require(bad.kind in KINDS, f"BadFrame of unknown kind {bad.kind!r}")
        except Exception as exc:
            raise ContractViolation(f"{type(exc).__name__} escaped the parser for {raw[:60]!r}") from exc


def _check_candles(candles: list[Candle], step: int, now_ms: int, what: str) -> None:
    stamps = [c.timestamp for c in candles]
    _require(stamps == sorted(set(stamps)), f"{what}: not oldest first without repeats")
    for c in candles:
        _require(c.timestamp % step == 0, f"{what}: {c.timestamp} is not aligned to {step} ms")
        _require(c.timestamp + step <= now_ms, f"{what}: the bar at {c.timestamp} has not closed yet")
        values = (c.open, c.high, c.low, c.close, c.volume)
        _require(all(math.isfinite(v) for v in values) and 0 < c.low <= min(c.open, c.close)
                 and max(c.open, c.close) <= c.high and c.volume >= 0, f"{what}: impossible candle {c}")


async def check_rest(adapter: ExchangeAdapter, symbol: str, now_ms: Callable[[], int], bars: int = 30) -> None:
    products = await adapter.fetch_products()
    _require(all(isinstance(p, ProductStats) and p.exchange == adapter.name for p in products),
             "fetch_products must return ProductStats of this exchange")
    _require(symbol in {p.symbol for p in products}, f"{symbol} missing from fetch_products")
    for tf in sorted(adapter.rest_timeframes & set(TIMEFRAMES), key=TIMEFRAME_MS.__getitem__):
        step = TIMEFRAME_MS[tf]
        now = now_ms()
        candles = await adapter.fetch_candles(symbol, tf, now - now % step - bars * step, now + step)
        _require(len(candles) >= bars // 2, f"fetch_candles {symbol} {tf}: {len(candles)} of {bars} bars")
        _check_candles(candles, step, now_ms(), f"fetch_candles {symbol} {tf}")
    try:
        await adapter.fetch_candles("NO-SUCH-SYMBOL", "5m", now_ms() - 3_600_000, now_ms())
    except UnknownSymbolError:
        pass
    else:
        raise ContractViolation("fetch_candles of an unknown symbol must raise UnknownSymbolError")


class _Listener:
    def __init__(self) -> None:
        self.updates: list[CandleUpdate] = []
        self.states: list[tuple[ConnectionState, str | None]] = []
        self.rejected: list[str] = []

    def on_candle(self, update: CandleUpdate) -> None:
        self.updates.append(update)

    def on_state(self, state: ConnectionState, detail: str | None = None) -> None:
        self.states.append((state, detail))

    def on_rejected(self, symbols: list[str], reason: str) -> None:
        self.rejected.extend(symbols)

    def closes(self, symbol: str, tf: str) -> list[Candle]:
        return [u.candle for u in self.updates if u.closed and u.symbol == symbol and u.timeframe == tf]


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise ContractViolation(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.02)


async def check_live(adapter: ExchangeAdapter, symbols: list[str], now_ms: Callable[[], int], *,
                     closes: int = 2, timeout: float = 30.0) -> dict[str, Any]:
    """Streams `symbols` on every native timeframe until each has `closes` closes; returns stats()."""
    native = sorted(adapter.native_timeframes, key=TIMEFRAME_MS.__getitem__)
    refused = [tf for tf in TIMEFRAMES if tf not in adapter.native_timeframes]
    if refused:
        try:
            adapter.live(symbols, native + refused, _Listener())
        except AdapterError:
            pass
        else:
            raise ContractViolation(f"live() must refuse timeframes it cannot stream natively: {refused}")
    listener = _Listener()
    stream = adapter.live([*symbols, "BAD:SYMBOL"], native, listener)
    task = asyncio.create_task(stream.run())
    try:
        await _until(lambda: all(len(listener.closes(s, tf)) >= closes for s in symbols for tf in native), timeout,
                     f"{closes} closes of every stream")
        kinds = [s for s, _ in listener.states]
        _require(ConnectionState.CONNECTING in kinds and ConnectionState.CONNECTED in kinds
                 and kinds.index(ConnectionState.CONNECTING) < kinds.index(ConnectionState.CONNECTED),
                 f"states must go CONNECTING -> CONNECTED, got {kinds}")
        _require(listener.rejected == ["BAD:SYMBOL"], f"a keyspace-unsafe symbol must be rejected: {listener.rejected}")
        _require(stream.symbols == frozenset(symbols), f"symbols() = {sorted(stream.symbols)}")
        stats = stream.stats()
        _require(all(k in stats for k in REQUIRED_COUNTERS), f"stats() lacks {REQUIRED_COUNTERS}: {sorted(stats)}")
        _require(isinstance(stats["frames"], int) and stats["frames"] > 0, "stats()['frames'] must count frames")
        last = symbols[-1]
        await stream.unsubscribe([last])
        _require(last not in stream.symbols, "unsubscribe() must drop the symbol")
        await stream.subscribe([last])
        _require(last in stream.symbols, "subscribe() must add the symbol")
    finally:
        await stream.close()
        await asyncio.wait_for(task, timeout)
    _require(listener.states[-1][0] == ConnectionState.DISCONNECTED, "run() must end DISCONNECTED after close()")
    for u in listener.updates:
        _require(u.exchange == adapter.name and u.timeframe in native and u.symbol in symbols,
                 f"an update for something not asked for: {u}")
    for s in symbols:
        for tf in native:
            _check_candles(listener.closes(s, tf), TIMEFRAME_MS[tf], now_ms(), f"live closes {s} {tf}")
    return stats
