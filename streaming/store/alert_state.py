"""AlertState <-> the Redis HASH `alertstate:{id}:{symbol}:{tf}` the close script reads and writes.

The alert rules (streaming.alerts.rules) know nothing of this format; the store keeps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec
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
    """alert_state_fields as HSET's arguments (field, value, field, value, ...), built directly."""
    return _args(state, _prev_text(state.prev_macd_v))


def _args(state: AlertState, prev: str) -> list[str]:
    return ["v", STATE_VERSION, "prev_macd_v", prev, "cooldowns", _cooldowns_text(state.cooldowns),
            "oversold_latched", _flag_text(state.oversold_latched),
            "overbought_latched", _flag_text(state.overbought_latched)]


def alert_state_write(old: AlertState, new: AlertState, stored: bool) -> tuple[list[str], str]:
    """What a close writes of the alert state `new` that follows `old`: (HSET arguments, the whole
    state as a JSON array of them or '').

    Not `stored` (Redis may not hold `old` whole): every field, and no JSON. Stored: only the
    fields that differ (none: nothing to write), and beside them the whole state, which the close
    script writes instead if the hash turns out to lack a field (deleted meanwhile). The MACD-V
    baseline moves on every close, the other fields rarely."""
    prev = new.prev_macd_v
    prev_text = _prev_text(prev)
    if not stored:
        return _args(new, prev_text), ""
    out = ["prev_macd_v", prev_text] if prev != old.prev_macd_v else []
    if new.cooldowns is not old.cooldowns and new.cooldowns != old.cooldowns:
        out += ("cooldowns", _cooldowns_text(new.cooldowns))
    if new.oversold_latched != old.oversold_latched:
        out += ("oversold_latched", _flag_text(new.oversold_latched))
    if new.overbought_latched != old.overbought_latched:
        out += ("overbought_latched", _flag_text(new.overbought_latched))
    if not out:
        return out, ""
    head = f'["v","{STATE_VERSION}","prev_macd_v","{prev_text}",'
    if not new.cooldowns and not new.oversold_latched and not new.overbought_latched:
        return out, head + _QUIET_REST
    return out, head + orjson.dumps(_args(new, prev_text)[4:]).decode()[1:]


# the fields after prev_macd_v of a state without cooldowns or latches, as JSON array items
_QUIET_REST = '"cooldowns","{}","oversold_latched","0","overbought_latched","0"]'
_float_text = msgspec.json.encode


def _prev_text(prev: float | None) -> str:
    # the shortest text that reads back as the same float, 4x faster than repr (a close writes it)
    return "" if prev is None else _float_text(prev).decode()


def _cooldowns_text(cooldowns: Mapping[str, int]) -> str:
    return orjson.dumps(dict(sorted(cooldowns.items()))).decode() if cooldowns else "{}"


def _flag_text(flag: bool) -> str:
    return "1" if flag else "0"


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
