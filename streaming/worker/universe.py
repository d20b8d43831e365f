"""Which symbols a worker serves for an exchange: the universe Dagster published, narrowed. No I/O.

Pools map symbol -> user ids: () for the shared pool (candles:{ex}:...), the holding users for
a Tier-2-only symbol (usercandles:{user}:{ex}:...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streaming.contracts.universe import UniverseEntry, UniverseError, decode_entries_leniently
from streaming.control.shard import Shard

Pools = dict[str, tuple[int, ...]]

NO_UNIVERSE = "materialize symbol_universe in Dagster or pass --symbols"

__all__ = ["NO_UNIVERSE", "ParsedUniverse", "PoolDiff", "Pools", "UniverseError", "diff_pools", "explicit_pools",
           "parse_universe", "select_pools", "shard_pools"]


@dataclass(frozen=True)
class ParsedUniverse:
    entries: tuple[UniverseEntry, ...]
    rejected: tuple[str, ...] = ()  # entries skipped as malformed, with the reason


def parse_universe(text: str | bytes) -> ParsedUniverse:
    """The universe's valid entries; malformed ones are skipped and listed in `rejected`."""
    try:
        entries, rejected = decode_entries_leniently(text)
    except UniverseError as exc:
        raise UniverseError(f"{exc}; {NO_UNIVERSE}") from None
    return ParsedUniverse(entries, rejected)


def select_pools(universe: ParsedUniverse, *, exchange: str, user: int | None = None, shard: Shard | None = None,
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
