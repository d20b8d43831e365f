"""Pure Coinbase frame parsing: raw text -> CoinbaseMessage (candles, heartbeat, ack).

One lenient msgspec pass decodes the frame with numbers-as-strings turned into numbers; a
single cheap check per candle guards the hot path (see validate.fast_candle).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from streaming.adapters.coinbase import schemas as s
from streaming.adapters.skips import (
    BAD_TIMESTAMP,
    EXCHANGE_ERROR,
    SCHEMA,
    BadFrame,
)
from streaming.adapters.validate import (
    MAX_TS_MS,
    MIN_TS_MS,
    check_timestamp,
    decode_frame,
    fast_candle,
    make_candle,
    to_int,
)
from streaming.models import Candle

FIVE_MINUTES_MS = 300_000
MAX_FRAME_BYTES = 1024 * 1024  # a snapshot is ~15 KB; anything near a megabyte is junk
NUMERIC = frozenset({"start", "open", "high", "low", "close", "volume"})

_envelope = msgspec.json.Decoder(s.Envelope, strict=False)


class CoinbaseMessage(msgspec.Struct):
    channel: str
    seq: int | None = None
    updates: list[tuple[str, Candle]] = []
    # product -> candles of its snapshot, in the order sent (oldest first)
    snapshots: dict[str, list[Candle]] = {}
    heartbeat: int | None = None
    time_ms: int | None = None  # frame timestamp, parsed for heartbeats only (cheap clock source)
    subscriptions: dict[str, list[str]] | None = None
    # candles inside an otherwise good frame that were unusable
    bad: list[BadFrame] = []


def parse_time_ms(text: str) -> int | None:
    """RFC3339 with up to nanoseconds -> epoch ms, None if unparsable."""
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except (ValueError, OverflowError):  # year 0 / 10000 after the zone offset, or junk
        return None


def _candle(c: s.WireCandle) -> Candle:
    ts = c.start * 1000
    if MIN_TS_MS <= ts < MAX_TS_MS and not ts % FIVE_MINUTES_MS:
        return fast_candle(ts, c.open, c.high, c.low, c.close, c.volume)
    if c.start > 10**11:  # seconds expected: a ms value would be year 5000+
        raise BadFrame(BAD_TIMESTAMP, f"start {c.start} is not epoch seconds")
    raise BadFrame(BAD_TIMESTAMP, f"start {c.start} is outside 2009..2100 or not on a 5-minute boundary")


def rest_candle(c: s.RestCandle, step_ms: int | None) -> Candle:
    start_s = to_int(c.start, "start")
    if start_s > 10**11:
        raise BadFrame(BAD_TIMESTAMP, f"start {start_s} is not epoch seconds")
    return make_candle(check_timestamp(start_s * 1000, step_ms), c.open, c.high, c.low, c.close, c.volume)


def parse_frame(raw: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> CoinbaseMessage:
    """Parse one WebSocket text frame. Raises BadFrame for an unusable frame.

    Channels other than candles/heartbeats/subscriptions are returned with only `channel` set
    (ignored, not errors).
    """
    try:
        return _parse(raw, max_bytes)
    except BadFrame:
        raise
    except Exception as exc:  # never anything but BadFrame out of a parser, whatever arrives
        raise BadFrame(SCHEMA, f"unusable frame ({type(exc).__name__}: {str(exc)[:100]})") from None


def _parse(raw: str | bytes, max_bytes: int) -> CoinbaseMessage:
    env = decode_frame(_envelope, raw, max_bytes, NUMERIC)
    channel = env.channel
    if env.type == "error" or (not channel and env.message):
        raise BadFrame(EXCHANGE_ERROR, env.message or "error frame")
    if not channel:
        raise BadFrame(SCHEMA, "frame has no channel")
    msg = CoinbaseMessage(channel, env.sequence_num)
    if channel == "candles":
        for event in env.events:
            if event.candles is None:
                raise BadFrame(SCHEMA, "candles event without candles")
            snapshot = event.type == "snapshot"
            for wc in event.candles:
                if not wc.product_id:
                    msg.bad.append(BadFrame(SCHEMA, "candle without product_id"))
                    continue
                try:
                    candle = _candle(wc)
                except BadFrame as bad:
                    msg.bad.append(bad)
                    continue
                if snapshot:
                    msg.snapshots.setdefault(wc.product_id, []).append(candle)
                else:
                    msg.updates.append((wc.product_id, candle))
    elif channel == "heartbeats":
        if not env.events or env.events[0].heartbeat_counter is None:
            raise BadFrame(SCHEMA, "heartbeats frame without heartbeat_counter")
        msg.heartbeat = env.events[0].heartbeat_counter
        msg.time_ms = parse_time_ms(env.timestamp) if env.timestamp else None
    elif channel == "subscriptions":
        subs: dict[str, list[str]] = {}
        for event in env.events:
            if event.subscriptions is not None:
                subs.update(event.subscriptions)  # each ack lists everything subscribed so far
        msg.subscriptions = subs
    return msg
