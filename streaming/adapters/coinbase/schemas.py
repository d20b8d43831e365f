"""Coinbase Advanced Trade wire types (msgspec): only the fields Livermore reads.

Numbers are strings on the wire (docs and recordings); numbers are accepted too.
"""

from __future__ import annotations

import msgspec

Num = str | int | float


class WireCandle(msgspec.Struct):
    # decoded leniently (strict=False): "1919.6" -> 1919.6, "1786309500" -> 1786309500
    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    product_id: str = ""


class Event(msgspec.Struct):
    """The union of the events Livermore reads; other channels' fields are skipped unread."""

    type: str = ""
    candles: list[WireCandle] | None = None
    heartbeat_counter: int | None = None
    current_time: str = ""
    subscriptions: dict[str, list[str]] | None = None


class Envelope(msgspec.Struct):
    channel: str = ""
    sequence_num: int | None = None
    timestamp: str = ""
    events: list[Event] = []
    # error frames: {"type": "error", "message": "..."}
    type: str = ""
    message: str = ""


# REST
class RestCandle(msgspec.Struct):
    start: Num
    open: Num
    high: Num
    low: Num
    close: Num
    volume: Num


class RestCandles(msgspec.Struct):
    candles: list[RestCandle]


class RestProduct(msgspec.Struct):
    product_id: str
    price: str = ""
    volume_24h: str = ""
    approximate_quote_24h_volume: str = ""
    base_currency_id: str = ""
    quote_currency_id: str = ""
    status: str = ""
    trading_disabled: bool = False
    is_disabled: bool = False
    alias: str = ""
    product_type: str = "SPOT"


class RestProducts(msgspec.Struct):
    products: list[RestProduct]


class Amount(msgspec.Struct):
    value: str = "0"
    currency: str = ""


class RestAccount(msgspec.Struct):
    currency: str
    available_balance: Amount = msgspec.field(default_factory=Amount)
    hold: Amount | None = None
    type: str = ""


class RestAccounts(msgspec.Struct):
    accounts: list[RestAccount]
    has_next: bool = False
    cursor: str | None = None
