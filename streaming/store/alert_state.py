"""AlertState <-> the Redis HASH `alertstate:{id}:{symbol}:{tf}` the close script reads and writes.

The alert rules (streaming.alerts.rules) know nothing of this format; the store keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

from streaming.alerts.rules import NO_COOLDOWNS, AlertState
from streaming.redis_text import str_hash

STATE_VERSION = "1"


def alert_state_fields(state: AlertState) -> dict[str, str]:
    """Flat str -> str for a Redis HASH. Always the same five fields, so one HSET replaces the
    whole state without leaving stale fields behind."""
    args = alert_state_args(state)
    return dict(zip(args[::2], args[1::2], strict=True))


def alert_state_args(state: AlertState) -> list[str]:
    """alert_state_fields as HSET's arguments (field, value, field, value, ...), built directly:
    every staged close writes them."""
    prev, cooldowns = state.prev_macd_v, state.cooldowns
    return ["v", STATE_VERSION, "prev_macd_v", "" if prev is None else repr(prev),
            "cooldowns", orjson.dumps(dict(sorted(cooldowns.items()))).decode() if cooldowns else "{}",
            "oversold_latched", "1" if state.oversold_latched else "0",
            "overbought_latched", "1" if state.overbought_latched else "0"]


def decode_alert_state(data: Mapping[str | bytes, str | bytes]) -> AlertState:
    """Inverse of alert_state_fields; accepts bytes (redis-py without decode_responses). An empty
    mapping (HGETALL of a missing key) is a fresh state. Raises ValueError naming a bad field."""
    if not data:
        return AlertState()
    d = str_hash(data)
    if d.get("v") != STATE_VERSION:
        raise ValueError(f"alert state version {d.get('v')!r} not supported (expected {STATE_VERSION})")
    raw_prev = d.get("prev_macd_v", "")
    prev: float | None = None
    if raw_prev:
        try:
            prev = float(raw_prev)
        except ValueError:
            raise ValueError(f"alert state field 'prev_macd_v' is not a number: {raw_prev!r}") from None
        if not math.isfinite(prev):
            raise ValueError(f"alert state field 'prev_macd_v' is not finite: {raw_prev!r}")
    try:
        cooldowns = orjson.loads(d.get("cooldowns", "{}"))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"alert state field 'cooldowns' is not JSON: {exc}") from None
    if not isinstance(cooldowns, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in cooldowns.items()
    ):
        raise ValueError("alert state field 'cooldowns' must map labels to integer epoch ms")
    return AlertState(prev, cooldowns or NO_COOLDOWNS, _flag(d, "oversold_latched"), _flag(d, "overbought_latched"))


def _flag(d: Mapping[str, str], name: str) -> bool:
    v = d.get(name, "0")
    if v not in ("0", "1"):
        raise ValueError(f"alert state field {name!r} must be '0' or '1', got {v!r}")
    return v == "1"
