"""Coinbase Advanced Trade wire types (msgspec): only the fields Livermore reads.

Numbers are strings on the wire (docs and recordings); numbers are accepted too.
"""

from __future__ import annotations

import msgspec

Num = str | int | float


class Envelope(msgspec.Struct):
    channel: str = ""
    sequence_num: int | None = None
    timestamp: str = ""
    events: msgspec.Raw = msgspec.Raw(b"[]")
    # error frames: {"type": "error", "message": "..."}
    type: str = ""
    message: str = ""


class WireCandle(msgspec.Struct):
    start: Num
    open: Num
    high: Num
    low: Num
    close: Num
    volume: Num
    product_id: str = ""


class CandleEvent(msgspec.Struct):
    candles: list[WireCandle]
    type: str = "update"


class HeartbeatEvent(msgspec.Struct):
    heartbeat_counter: int | str
    current_time: str = ""


class SubscriptionsEvent(msgspec.Struct):
    subscriptions: dict[str, list[str]]


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
