"""Binance spot wire types (msgspec): only the fields Livermore reads. The per-frame types are not
tracked by the garbage collector (gc=False: they hold no containers, so no cycles): a frame makes
three of them, and tracked they would start a collection every few hundred frames."""

from __future__ import annotations

import msgspec

Num = str | int | float


class Kline(msgspec.Struct, gc=False):
    # decoded leniently (strict=False): "13.72120000" -> 13.7212
    t: int
    s: str
    i: str
    o: float
    c: float
    h: float
    l: float  # noqa: E741 - the wire name
    v: float
    x: bool
    T: int = 0


class Event(msgspec.Struct, gc=False):
    e: str = ""
    s: str = ""
    k: Kline | None = None


class ErrorBody(msgspec.Struct, gc=False):
    code: int | str = 0
    msg: str = ""


class Frame(msgspec.Struct, gc=False):
    """A combined-stream frame {"stream","data"}, a raw event, a method response {"result","id"},
    or an error: {"code","msg"(,"id")} as Binance documents it, {"error":{"code","msg"},"id"} as
    the simulator (and older API versions) send it."""

    data: Event | None = None
    e: str = ""
    s: str = ""
    k: Kline | None = None
    result: msgspec.Raw = msgspec.Raw()  # never looked at: left undecoded
    id: int | str | None = None
    error: ErrorBody | None = None
    code: int | str | None = None
    msg: str = ""


class SymbolInfo(msgspec.Struct):
    symbol: str
    status: str = ""
    baseAsset: str = ""
    quoteAsset: str = ""


class ExchangeInfo(msgspec.Struct):
    symbols: list[SymbolInfo]


class Ticker(msgspec.Struct):
    symbol: str
    lastPrice: str = "0"
    volume: str = "0"
    quoteVolume: str = "0"


class AccountBalance(msgspec.Struct):
    asset: str
    free: str = "0"
    locked: str = "0"


class Account(msgspec.Struct):
    balances: list[AccountBalance]
