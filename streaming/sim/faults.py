"""Faults the simulator injects on demand, their validation, and malformed frames. Pure."""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("drop", "stall", "stall_symbol", "malformed", "duplicate", "out_of_order", "sequence_gap",
               "rate_limit", "server_shutdown", "slow_rest", "lose_closes")
MAX_LOSE_SYMBOLS = 5000
MALFORMED_KINDS = ("invalid_json", "missing_fields", "wrong_types", "nan", "negative_price", "high_below_low",
                   "absurd_timestamp", "oversized")


_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


class FaultError(ValueError):
    """A fault request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class FaultRecord:
    seq: int
    kind: str
    exchange: str
    params: dict[str, Any]
    sim_ms: int
    real_time: float
    connections: int = 0  # live connections it reached (WebSocket faults)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(params: dict[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultError(f"{name} must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise FaultError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return value


def validate(kind: str, exchange: str, params: dict[str, Any]) -> dict[str, Any]:
    """Normalised parameters of a fault, or FaultError."""
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
    allowed = {"drop": set(), "stall": {"seconds"}, "stall_symbol": {"symbol", "seconds"},
               "malformed": {"kind", "count"}, "duplicate": {"count"},
               "out_of_order": {"count"}, "sequence_gap": {"count"}, "rate_limit": {"count", "retry_after"},
               "server_shutdown": {"close"}, "slow_rest": {"seconds"}, "lose_closes": {"symbols"}}[kind]
    extra = set(params) - allowed
    if extra:
        raise FaultError(f"fault {kind!r} takes {sorted(allowed) or 'no parameters'}, not {sorted(extra)}")
    if kind == "sequence_gap" and exchange != "coinbase":
        raise FaultError("sequence_gap only exists on coinbase (Binance frames carry no sequence number)")
    if kind == "server_shutdown" and exchange == "coinbase":
        raise FaultError("server_shutdown is a Binance event; use drop on coinbase")
    if kind == "lose_closes" and exchange == "coinbase":
        raise FaultError("lose_closes is simulated on binance and binance_us only")
    out: dict[str, Any] = {}
    if kind in ("stall", "stall_symbol"):
        out["seconds"] = _number(params, "seconds", 5.0, 0.0, 3600.0)
    if kind == "stall_symbol":
        symbol = params.get("symbol")
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
            raise FaultError(f"stall_symbol needs a symbol like BTC-USD or BTCUSDT, got {str(symbol)[:40]!r}")
        out["symbol"] = symbol.upper()
    if kind in ("malformed", "duplicate", "out_of_order", "sequence_gap", "rate_limit"):
        out["count"] = int(_number(params, "count", 1, 1, 10_000))
    if kind == "malformed":
        mk = params.get("kind", "invalid_json")
        if mk != "all" and mk not in MALFORMED_KINDS:
            raise FaultError(f"unknown malformed kind {mk!r}; expected 'all' or one of {', '.join(MALFORMED_KINDS)}")
        out["kind"] = mk
    if kind == "rate_limit":
        out["retry_after"] = int(_number(params, "retry_after", 1, 0, 3600))
    if kind == "server_shutdown":
        out["close"] = bool(params.get("close", True))
    if kind == "slow_rest":
        out["seconds"] = _number(params, "seconds", 0.5, 0.0, 60.0)
    if kind == "lose_closes":
        out["symbols"] = _symbols(params.get("symbols"))
    return out


def _symbols(value: Any) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) and s for s in value):
        raise FaultError(f"symbols must be a non-empty list of symbol names, got {str(value)[:80]}")
    if len(value) > MAX_LOSE_SYMBOLS:
        raise FaultError(f"symbols: at most {MAX_LOSE_SYMBOLS}, got {len(value)}")
    return sorted({s.upper() for s in value})


def malformed_kinds(kind: str, count: int) -> list[str]:
    if kind == "all":
        return [MALFORMED_KINDS[i % len(MALFORMED_KINDS)] for i in range(count)]
    return [kind] * count


def _negate(values: dict[str, Any], names: tuple[str, ...]) -> None:
    for n in names:
        values[n] = "-" + str(values[n]).lstrip("-")


def corrupt_coinbase(frame: dict[str, Any], kind: str, oversized_bytes: int) -> str:
    """A candles `update` frame (already numbered) spoiled in the way `kind` says."""
    if kind == "invalid_json":
        return json.dumps(frame)[: 40] + "{]"
    f = copy.deepcopy(frame)
    candle = f["events"][0]["candles"][0]
    if kind == "missing_fields":
        del candle["close"], candle["start"]
    elif kind == "wrong_types":
        candle["open"] = [candle["open"]]
        candle["start"] = {"seconds": candle["start"]}
        f["events"][0]["type"] = 7
    elif kind == "nan":
        candle["close"] = "NaN"
        candle["high"] = "Infinity"
    elif kind == "negative_price":
        _negate(candle, ("open", "high", "low", "close"))
    elif kind == "high_below_low":
        candle["high"], candle["low"] = candle["low"], str(float(candle["high"]) * 1.5)
    elif kind == "absurd_timestamp":
        candle["start"] = "99999999999999"
    elif kind == "oversized":
        f["padding"] = "x" * oversized_bytes
    return json.dumps(f, separators=(",", ":"))


def corrupt_binance(payload: dict[str, Any], kind: str, oversized_bytes: int, stream: str | None) -> str:
    """A kline payload spoiled as `kind` says; wrapped as a combined-stream frame when `stream`."""
    if kind == "invalid_json":
        return json.dumps(payload)[: 40] + "{]"
    p = copy.deepcopy(payload)
    k = p["k"]
    if kind == "missing_fields":
        del k["c"], k["t"]
    elif kind == "wrong_types":
        k["t"] = "yesterday"
        k["x"] = "maybe"
        k["o"] = {"price": k["o"]}
    elif kind == "nan":
        k["c"] = "NaN"
        k["h"] = "Infinity"
    elif kind == "negative_price":
        _negate(k, ("o", "h", "l", "c"))
    elif kind == "high_below_low":
        k["h"], k["l"] = k["l"], f"{float(k['h']) * 1.5:.8f}"
    elif kind == "absurd_timestamp":
        k["t"] = 2**62
        k["T"] = 2**62 + 1
    elif kind == "oversized":
        p["padding"] = "x" * oversized_bytes
    body: Any = {"stream": stream, "data": p} if stream else p
    return json.dumps(body, separators=(",", ":"))
