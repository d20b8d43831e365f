"""Which symbols a worker serves for an exchange: the universe (contract A), narrowed. No I/O.

Pools map symbol -> user ids: () for the shared pool (candles:{ex}:...), the holding users for
a Tier-2-only symbol (usercandles:{user}:{ex}:...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson

from streaming.control.shard import Shard
from streaming.keys import InvalidSymbol, validate_symbol

Pools = dict[str, tuple[int, ...]]

NO_UNIVERSE = "materialize symbol_universe in Dagster or pass --symbols"


class UniverseError(ValueError):
    pass


@dataclass(frozen=True)
class Entry:
    symbol: str
    tier: int
    pool: str  # "shared" | "user"
    users: tuple[int, ...]


@dataclass(frozen=True)
class Universe:
    exchange_id: int | None
    exchange: str | None
    updated_at: str | None
    entries: tuple[Entry, ...]
    rejected: tuple[str, ...] = ()  # entries skipped as malformed, with the reason


def parse_universe(text: str | bytes) -> Universe:
    """Parse the universe JSON; malformed entries are skipped and listed in `rejected`."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UniverseError(f"the universe is not valid JSON ({exc}); {NO_UNIVERSE}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), list):
        raise UniverseError(f"the universe has no 'symbols' list; {NO_UNIVERSE}")
    entries: list[Entry] = []
    rejected: list[str] = []
    seen: set[str] = set()
    for item in doc["symbols"]:
        try:
            entry = _entry(item)
        except (InvalidSymbol, ValueError, TypeError) as exc:
            rejected.append(f"{str(item)[:60]}: {exc}")
            continue
        if entry.symbol not in seen:
            seen.add(entry.symbol)
            entries.append(entry)
    exchange_id = doc.get("exchange_id")
    return Universe(
        exchange_id=exchange_id if isinstance(exchange_id, int) and not isinstance(exchange_id, bool) else None,
        exchange=doc.get("exchange") if isinstance(doc.get("exchange"), str) else None,
        updated_at=doc.get("updated_at") if isinstance(doc.get("updated_at"), str) else None,
        entries=tuple(entries), rejected=tuple(rejected),
    )


def _entry(item: object) -> Entry:
    if not isinstance(item, dict):
        raise ValueError("entry is not an object")
    symbol = validate_symbol(item.get("symbol"))
    pool = item.get("pool", "shared")
    if pool not in ("shared", "user"):
        raise ValueError(f"pool must be 'shared' or 'user', got {pool!r}")
    users_raw = item.get("users") or []
    if not isinstance(users_raw, list) or not all(isinstance(u, int) and not isinstance(u, bool) and u > 0
                                                  for u in users_raw):
        raise ValueError("users must be a list of positive integer ids")
    if pool == "user" and not users_raw:
        raise ValueError("a user-pool symbol needs at least one user")
    tier = item.get("tier", 1 if pool == "shared" else 2)
    if tier not in (1, 2):
        raise ValueError(f"tier must be 1 or 2, got {tier!r}")
    return Entry(symbol, tier, pool, tuple(sorted(set(users_raw))))


def select_pools(universe: Universe, *, exchange: str, user: int | None = None, shard: Shard | None = None,
                 extra_user_symbols: Iterable[str] = ()) -> Pools:
    """The symbols this worker serves: shared ones, plus user-pool ones (only `user`'s when given),
    plus `extra_user_symbols` (the user's positions) in that user's pool; then its shard's share."""
    pools: Pools = {}
    for e in universe.entries:
        if e.pool == "shared":
            pools[e.symbol] = ()
        elif user is None:
            pools[e.symbol] = e.users
        elif user in e.users:
            pools[e.symbol] = (user,)
    if user is not None:
        for symbol in extra_user_symbols:
            pools.setdefault(symbol, (user,))
    return shard_pools(pools, exchange, shard)


def explicit_pools(symbols: Iterable[str], *, exchange: str, shard: Shard | None = None) -> Pools:
    return shard_pools(dict.fromkeys(symbols, ()), exchange, shard)


def shard_pools(pools: Mapping[str, tuple[int, ...]], exchange: str, shard: Shard | None) -> Pools:
    if shard is None:
        return dict(pools)
    return {s: users for s, users in pools.items() if shard.owns(exchange, s)}


@dataclass(frozen=True)
class PoolDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    moved: tuple[str, ...]  # still served, but a different pool / users

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.moved)


def diff_pools(old: Mapping[str, tuple[int, ...]], new: Mapping[str, tuple[int, ...]]) -> PoolDiff:
    return PoolDiff(
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        moved=tuple(sorted(s for s in old.keys() & new.keys() if old[s] != new[s])),
    )
