"""Staging closes for the CLOSE_BATCH script (streaming.store.scripts). Pure: no I/O.

`stage_close` advances one stream's in-memory state by a closed candle (MACD-V, alert rules) and
encodes the close's spec: its keys, candle TTL, close channel, the candle member, the close
event, the indicator value, the alert state's changed fields, the alerts and the whole alert state
(for a hash found incomplete). The layout is CLOSE_BATCH's: one flat MessagePack array per close,
without nested arrays, because every table the script's decoder builds costs Redis time.
The script stores the candle and publishes the rest only if the bar is newer than the stream's
marker in Redis; memory only *expects* the close to be new, and StreamStates drops the state
wherever Redis disagreed.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from streaming import keys
from streaming.aggregation import Correction
from streaming.alerts.publish import alert_event, encode_alert
from streaming.alerts.rules import evaluate
from streaming.models import Candle
from streaming.pipeline.events import close_event_from_member, indicator_json, symbol_event_open
from streaming.pipeline.state import StreamState
from streaming.store.alert_state import alert_state_write
from streaming.store.candles import candle_keys
from streaming.store.codec import encode_candle
from streaming.timeframes import TIMEFRAME_MS

# (symbol, timeframe) of one exchange
Stream = tuple[str, str]

_encode_spec = msgspec.msgpack.Encoder().encode


class StreamHead(msgspec.Struct, frozen=True, gc=False):
    """The constant parts of one stream's closes, encoded once per stream (kept for every live
    stream: a Struct without a GC header is 80 bytes where a NamedTuple was 96). `symbol_open`
    is the same object for every stream of a symbol when the caller passes it (StreamStates)."""

    exchange_id: int
    exchange: str
    symbol: str
    timeframe: str
    timeframe_ms: int
    spec_open: bytes  # the spec's items up to the candle (keys, candle TTL, close channel), no header
    spec_items: int  # how many items spec_open holds
    symbol_open: bytes  # the close event up to the timeframe: exchange and symbol


def stream_head(exchange_id: int, exchange: str, symbol: str, timeframe: str, user_ids: Sequence[int],
                user_ttl_s: int, symbol_open: bytes | None = None) -> StreamHead:
    """`symbol_open`: the symbol's symbol_event_open, shared by its streams (made here if None)."""
    stored = candle_keys(exchange_id, symbol, timeframe, user_ids)
    items = (len(stored), keys.closed_marker(exchange_id, symbol, timeframe),
             keys.indicator(exchange_id, symbol, timeframe), keys.alert_state(exchange_id, symbol, timeframe),
             *stored, user_ttl_s if user_ids else 0, keys.candle_close_channel(exchange_id, symbol, timeframe))
    if symbol_open is None:
        symbol_open = symbol_event_open(exchange_id, exchange, symbol)
    return StreamHead(exchange_id, exchange, symbol, timeframe, TIMEFRAME_MS[timeframe], _items(_encode_spec(items)),
                      len(items), symbol_open)


class Staged(msgspec.Struct, frozen=True, gc=False):
    """One staged close: `expected_new` = memory advanced its state by it (it was newer than the
    last candle memory had); the script's outcome says whether Redis agreed. (A Struct: a
    NamedTuple took 0.4 us to build, a fifth of encoding the whole spec.)"""

    symbol: str
    timeframe: str
    candle: Candle
    expected_new: bool


def stage_close(state: StreamState, head: StreamHead, candle: Candle, source: str,
                cooldown_ms: int) -> tuple[bytes, Staged]:
    """The CLOSE_BATCH spec of one closed candle of the stream `head`, and its record.

    A candle newer than `state.last` advances `state` (MACD-V, then the alert rules with `now` =
    the candle's close time) and its spec carries the indicator value, the alert state and the
    alerts; an older or equal one only stores the candle (the script counts it as a duplicate or
    a correction).

    The alert state goes whole the first time (`state.alerts_stored` false), then as the fields
    that changed, with the whole state beside them for the script to write instead if the hash
    turns out to lack a field (deleted meanwhile)."""
    ts = candle.timestamp
    last_ts = state.last_ts
    expected_new = last_ts is None or ts > last_ts
    if expected_new:
        value = state.advance(candle, head.timeframe)
        old = state.alerts
        new, signals = evaluate(old, value, ts + head.timeframe_ms, cooldown_ms)
        fields, whole = alert_state_write(old, new, state.alerts_stored)
        state.alerts = new  # stored with this close; if Redis disagrees, StreamStates reloads the stream
        ind = indicator_json(ts, value).decode()
        alerts = [encode_alert(alert_event(head.exchange_id, head.exchange, head.symbol, head.timeframe, ts,
                                           candle.close, s)).decode() for s in signals] if signals else []
    else:
        fields, whole, ind, alerts = [], "", "", []
    member = encode_candle(candle)
    event = close_event_from_member(head.symbol_open, head.timeframe, member, source)
    tail = _items(_encode_spec((str(ts), member.decode(), event.decode(), ind, len(fields), *fields,
                                len(alerts), *alerts, whole)))
    count = head.spec_items + 7 + len(fields) + len(alerts)
    return (b"\xdc" + count.to_bytes(2, "big") + head.spec_open + tail,
            Staged(head.symbol, head.timeframe, candle, expected_new))


def _items(array: bytes) -> bytes:
    """A MessagePack array's items without its header (fixarray or array 16)."""
    return array[1:] if array[0] < 0xDC else array[3:]



class Batch:
    """Closes staged for one call of the CLOSE_BATCH script, in order; `aggregated` are the
    aggregate bars among them (for reconciliation), `corrections` the aggregate bars to rebuild
    once the batch is stored."""

    __slots__ = ("aggregated", "corrections", "specs", "staged")

    def __init__(self) -> None:
        self.specs: list[bytes] = []
        self.staged: list[Staged] = []
        self.aggregated: list[tuple[str, str, Candle]] = []
        self.corrections: list[tuple[str, Correction]] = []

    def add(self, spec: bytes, staged: Staged) -> None:
        self.specs.append(spec)
        self.staged.append(staged)
