"""The symbol universe: Tier 1 plus Tier 2, each symbol once, with its candle pool (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from streaming.contracts.universe import Universe, UniverseEntry, as_json_object
from streaming.timeframes import TIMEFRAMES

SHARED: Final = "shared"  # candles:{ex}:...
USER: Final = "user"  # usercandles:{user}:{ex}:..., once per holding user


def build_universe(tier1: Sequence[str], tier2: Iterable[tuple[int, str]]) -> list[UniverseEntry]:
    """Tier 1 in rank order, then Tier 2-only symbols by name. `tier2` = (user_id, symbol) pairs.

    A Tier 2 symbol that is also Tier 1 streams once into the shared pool, but its holders are
    still listed so the worker knows who watches it.
    """
    holders: dict[str, set[int]] = {}
    for user_id, symbol in tier2:
        holders.setdefault(symbol, set()).add(int(user_id))
    out: list[UniverseEntry] = []
    seen: set[str] = set()
    for symbol in tier1:
        if symbol in seen:
            continue
        seen.add(symbol)
        out.append(UniverseEntry(symbol, 1, SHARED, tuple(sorted(holders.get(symbol, ())))))
    for symbol in sorted(holders):
        if symbol not in seen:
            seen.add(symbol)
            out.append(UniverseEntry(symbol, 2, USER, tuple(sorted(holders[symbol]))))
    return out


def universe_document(exchange_id: int, exchange: str, updated_at: str,
                      entries: Sequence[UniverseEntry]) -> dict[str, object]:
    """The JSON object stored at streaming.keys.universe(id) for the worker."""
    return as_json_object(Universe(exchange_id, exchange, updated_at, tuple(entries)))


# --- asset-check logic -------------------------------------------------------------------------

# Coinbase documents no per-connection product limit for `candles`; this is our own conservative
# bound (one 5m stream per product). Override with api_limits.ws_max_symbols on the exchanges row.
DEFAULT_COINBASE_MAX_SYMBOLS = 500
# How many Binance connections one exchange may use; the worker opens one per 1024 streams.
DEFAULT_MAX_CONNECTIONS = 5


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: Mapping[str, int]


def check_not_empty(entries: Sequence[UniverseEntry]) -> CheckOutcome:
    n = len(entries)
    if n == 0:
        return CheckOutcome(False, "the universe is empty: the worker would stream nothing; check that "
                            "tier1_symbols ranked something (quotes, top_n) and that the exchange answered",
                            {"symbols": 0})
    return CheckOutcome(True, f"{n} symbols", {"symbols": n})


def check_no_duplicates(entries: Sequence[UniverseEntry]) -> CheckOutcome:
    seen: set[str] = set()
    dupes: set[str] = set()
    for e in entries:
        (dupes if e.symbol in seen else seen).add(e.symbol)
    if dupes:
        return CheckOutcome(False, f"duplicate symbols: {', '.join(sorted(dupes))}",
                            {"duplicates": len(dupes)})
    return CheckOutcome(True, "every symbol once", {"duplicates": 0})


def max_symbols(exchange: str, api_limits: Mapping[str, object], timeframes: int = len(TIMEFRAMES)) -> int:
    """How many symbols the exchange's stream limits allow the worker to watch."""
    explicit = api_limits.get("ws_max_symbols")
    if isinstance(explicit, int) and explicit > 0:
        return explicit
    per_conn = api_limits.get("ws_streams_per_connection")
    if isinstance(per_conn, int) and per_conn > 0:
        conns = api_limits.get("ws_max_connections", DEFAULT_MAX_CONNECTIONS)
        conns = conns if isinstance(conns, int) and conns > 0 else DEFAULT_MAX_CONNECTIONS
        # Binance streams every timeframe natively: one stream per (symbol, timeframe)
        return per_conn * conns // max(1, timeframes)
    return DEFAULT_COINBASE_MAX_SYMBOLS


def check_stream_limits(entries: Sequence[UniverseEntry], exchange: str,
                        api_limits: Mapping[str, object]) -> CheckOutcome:
    limit = max_symbols(exchange, api_limits)
    n = len(entries)
    meta = {"symbols": n, "max_symbols": limit}
    if n > limit:
        return CheckOutcome(False, f"{n} symbols exceed {exchange}'s stream limit of {limit}; lower top_n of "
                            "tier1_symbols or raise api_limits (ws_max_symbols / ws_max_connections) on the "
                            "exchanges row", meta)
    return CheckOutcome(True, f"{n} of at most {limit} symbols", meta)
