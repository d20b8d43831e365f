"""Pure Coinbase frame parsing: raw text -> CoinbaseMessage (candles, heartbeat, ack)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from streaming.adapters.coinbase import schemas as s
from streaming.adapters.skips import (
    BAD_TIMESTAMP,
    EXCHANGE_ERROR,
    INVALID_JSON,
    OVERSIZED,
    SCHEMA,
    BadFrame,
)
from streaming.adapters.validate import check_timestamp, make_candle, to_int
from streaming.models import Candle

FIVE_MINUTES_MS = 300_000
MAX_FRAME_BYTES = 4 * 1024 * 1024

_envelope = msgspec.json.Decoder(s.Envelope)
_candle_events = msgspec.json.Decoder(list[s.CandleEvent])
_heartbeat_events = msgspec.json.Decoder(list[s.HeartbeatEvent])
_subscription_events = msgspec.json.Decoder(list[s.SubscriptionsEvent])


@dataclass(slots=True)
class CoinbaseMessage:
    channel: str
    seq: int | None = None
    updates: list[tuple[str, Candle]] = field(default_factory=list)
    # product -> candles of its snapshot, in the order sent (oldest first)
    snapshots: dict[str, list[Candle]] = field(default_factory=dict)
    heartbeat: int | None = None
    time_ms: int | None = None  # frame timestamp, parsed for heartbeats only (cheap clock source)
    subscriptions: dict[str, list[str]] | None = None
    # candles inside an otherwise good frame that were unusable
    bad: list[BadFrame] = field(default_factory=list)


def parse_time_ms(text: str) -> int | None:
    """RFC3339 with up to nanoseconds -> epoch ms, None if unparsable."""
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return None


def _decode(decoder: msgspec.json.Decoder, raw: msgspec.Raw, channel: str):  # type: ignore[no-untyped-def]
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise BadFrame(SCHEMA, f"{channel} events: {exc}") from None
    except msgspec.DecodeError as exc:  # pragma: no cover - Raw is already valid JSON
        raise BadFrame(INVALID_JSON, str(exc)) from None


def wire_candle(c: s.WireCandle | s.RestCandle, step_ms: int | None = FIVE_MINUTES_MS) -> Candle:
    start_s = to_int(c.start, "start")
    if start_s > 10**11:  # seconds expected: a ms value would be year 5000+
        raise BadFrame(BAD_TIMESTAMP, f"start {start_s} is not epoch seconds")
    ts = check_timestamp(start_s * 1000, step_ms)
    return make_candle(ts, c.open, c.high, c.low, c.close, c.volume)


def parse_frame(raw: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> CoinbaseMessage:
    """Parse one WebSocket text frame. Raises BadFrame for an unusable frame.

    Channels other than candles/heartbeats/subscriptions are returned with only `channel` set
    (ignored, not errors).
    """
    if len(raw) > max_bytes:
        raise BadFrame(OVERSIZED, f"{len(raw)} bytes > {max_bytes}")
    try:
        env = _envelope.decode(raw)
    except msgspec.ValidationError as exc:
        raise BadFrame(SCHEMA, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise BadFrame(INVALID_JSON, str(exc)) from None
    channel = env.channel
    if env.type == "error" or (not channel and env.message):
        raise BadFrame(EXCHANGE_ERROR, env.message or "error frame")
    if not channel:
        raise BadFrame(SCHEMA, "frame has no channel")
    msg = CoinbaseMessage(channel=channel, seq=env.sequence_num)
    if channel == "candles":
        for event in _decode(_candle_events, env.events, channel):
            snapshot = event.type == "snapshot"
            for wc in event.candles:
                if not wc.product_id:
                    msg.bad.append(BadFrame(SCHEMA, "candle without product_id"))
                    continue
                try:
                    candle = wire_candle(wc)
                except BadFrame as bad:
                    msg.bad.append(bad)
                    continue
                if snapshot:
                    msg.snapshots.setdefault(wc.product_id, []).append(candle)
                else:
                    msg.updates.append((wc.product_id, candle))
    elif channel == "heartbeats":
        events = _decode(_heartbeat_events, env.events, channel)
        if not events:
            raise BadFrame(SCHEMA, "heartbeats frame without events")
        counter = events[0].heartbeat_counter
        try:
            msg.heartbeat = to_int(counter, "heartbeat_counter")
        except BadFrame as bad:
            raise BadFrame(SCHEMA, bad.detail) from None
        msg.time_ms = parse_time_ms(env.timestamp) if env.timestamp else None
    elif channel == "subscriptions":
        subs: dict[str, list[str]] = {}
        for event in _decode(_subscription_events, env.events, channel):
            subs.update(event.subscriptions)  # each ack lists everything subscribed so far
        msg.subscriptions = subs
    return msg
