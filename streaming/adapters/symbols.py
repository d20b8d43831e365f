"""Keyspace-safety checks of symbols at the adapter boundary (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from streaming.keys import InvalidSymbol, validate_symbol


def split_valid(symbols: Iterable[object]) -> tuple[list[str], list[str], str]:
    """(valid symbols in first-seen order without duplicates, rejected as text, reason)."""
    good: list[str] = []
    seen: set[str] = set()
    bad: list[str] = []
    reasons: list[str] = []
    for sym in symbols:
        try:
            ok = validate_symbol(sym)
        except InvalidSymbol as exc:
            bad.append(str(sym)[:60])
            reasons.append(str(exc))
            continue
        if ok not in seen:
            seen.add(ok)
            good.append(ok)
    return good, bad, "; ".join(reasons[:3])


def require_symbol(symbol: object, exchange: str) -> str:
    """A keyspace-safe symbol, or UnknownSymbolError saying why (REST entry points)."""
    from streaming.adapters.base import UnknownSymbolError

    try:
        return validate_symbol(symbol)
    except InvalidSymbol as exc:
        raise UnknownSymbolError(f"{exchange}: {exc}") from None
