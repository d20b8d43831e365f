"""Subscriptions: which alerts go to which destination. Pure matching and input checks.

A subscription is a conjunction of optional filters; an unset filter matches everything. An alert
goes to a destination when any of the destination's subscriptions matches it (once, however many
match).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import msgspec

from streaming.keys import InvalidSymbol, validate_symbol
from streaming.notify.events import AlertEvent
from streaming.timeframes import TIMEFRAMES

ALERT_TYPES = ("level", "reversal")
TIERS = (1, 2)


class InvalidSubscription(ValueError):
    """One line saying which filter is wrong and what is allowed."""


class Subscription(msgspec.Struct, frozen=True):
    id: int
    destination_id: int
    exchange_id: int | None = None  # None: every exchange
    symbols: tuple[str, ...] | None = None
    tiers: tuple[int, ...] | None = None  # 1 = top-volume symbols, 2 = symbols users hold
    timeframes: tuple[str, ...] | None = None
    types: tuple[str, ...] | None = None  # level, reversal
    min_level: float | None = None  # level alerts only: |level| >= min_level (reversals pass)


TierOf = Callable[[int, str], "int | None"]


def matches(sub: Subscription, alert: AlertEvent, tier_of: TierOf) -> bool:
    if sub.exchange_id is not None and alert.source_exchange_id != sub.exchange_id:
        return False
    if sub.symbols is not None and alert.symbol not in sub.symbols:
        return False
    if sub.timeframes is not None and alert.timeframe not in sub.timeframes:
        return False
    if sub.types is not None and alert.type not in sub.types:
        return False
    if sub.min_level is not None and alert.type == "level" and (
            alert.level is None or abs(alert.level) < sub.min_level):
        return False
    return sub.tiers is None or tier_of(alert.source_exchange_id, alert.symbol) in sub.tiers


def route(alert: AlertEvent, subs: Iterable[Subscription], tier_of: TierOf) -> list[int]:
    """The destination ids the alert goes to, each once, in ascending order."""
    return sorted({s.destination_id for s in subs if matches(s, alert, tier_of)})


def _choices(values: Sequence[str] | None, allowed: Sequence[str], what: str) -> tuple[str, ...] | None:
    if not values:
        return None
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidSubscription(f"unknown {what} {bad[0]!r}; expected one of {', '.join(allowed)}")
    return tuple(dict.fromkeys(values))


def check_filters(symbols: Sequence[str] | None = None, tiers: Sequence[int] | None = None,
                  timeframes: Sequence[str] | None = None, types: Sequence[str] | None = None,
                  min_level: float | None = None) -> dict:
    """Normalised filter values (duplicates dropped, empty = None), or InvalidSubscription."""
    syms = None
    if symbols:
        try:
            syms = tuple(dict.fromkeys(validate_symbol(s) for s in symbols))
        except InvalidSymbol as exc:
            raise InvalidSubscription(str(exc)) from None
    tier_values = None
    if tiers:
        bad = [t for t in tiers if t not in TIERS]
        if bad:
            raise InvalidSubscription(f"unknown tier {bad[0]!r}; expected 1 (top volume) or 2 (symbols users hold)")
        tier_values = tuple(sorted(set(tiers)))
    if min_level is not None and not (0 < min_level <= 10_000):
        raise InvalidSubscription(f"min level {min_level!r} is invalid; give the size of a level, e.g. 200 for "
                                  "-200 and beyond and 200 and beyond")
    return {
        "symbols": syms,
        "tiers": tier_values,
        "timeframes": _choices(timeframes, TIMEFRAMES, "timeframe"),
        "types": _choices(types, ALERT_TYPES, "alert type"),
        "min_level": float(min_level) if min_level is not None else None,
    }


def describe(sub: Subscription, exchange_names: dict[int, str]) -> str:
    """`binance 1h,4h BTCUSDT level>=200`, or `everything`."""
    parts = []
    if sub.exchange_id is not None:
        parts.append(exchange_names.get(sub.exchange_id, f"exchange {sub.exchange_id}"))
    if sub.tiers:
        parts.append("tier " + ",".join(str(t) for t in sub.tiers))
    if sub.symbols:
        parts.append(",".join(sub.symbols))
    if sub.timeframes:
        parts.append(",".join(sub.timeframes))
    if sub.types:
        parts.append(",".join(sub.types))
    if sub.min_level is not None:
        parts.append(f"level>={sub.min_level:g}")
    return " ".join(parts) or "everything"
