"""The symbol universe Dagster publishes for the worker (Redis key universe:{id}).

Written by livermore_pipelines/universe_builder.py; read by the worker (streaming/worker/universe.py),
which skips malformed entries one by one, and by streaming.pipeline.pools_from_universe, which
refuses a document with any malformed entry.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from msgspec.structs import force_setattr

from streaming.contracts.fields import ExchangeId, ExchangeName, IsoTime, Symbol, UserId

Pool = Literal["shared", "user"]


class UniverseError(ValueError):
    """The universe document (or one entry of it) is unusable; the message says why."""


class UniverseEntry(msgspec.Struct, frozen=True):
    """One symbol of the universe and where its candles are stored."""

    symbol: Symbol
    tier: Annotated[Literal[1, 2] | None, Meta(description=(
        "1 = ranked by the exchange's volume, 2 = only held by users; absent: 1 in the shared pool, "
        "2 in the user pool"))] = None
    pool: Annotated[Pool, Meta(description=(
        "`shared` stores candles under `candles:...`, `user` under `usercandles:{user}:...` once per "
        "holding user"))] = "shared"
    users: Annotated[tuple[UserId, ...], Meta(description=(
        "ids of the users holding the symbol (at least one in the user pool); sorted, each once"))] = ()

    def __post_init__(self) -> None:
        if self.pool == "user" and not self.users:
            raise ValueError("a user-pool symbol needs at least one user")
        if self.tier is None:
            force_setattr(self, "tier", 1 if self.pool == "shared" else 2)
        users = tuple(sorted(set(self.users)))
        if users != self.users:
            force_setattr(self, "users", users)

    def to_json(self) -> dict[str, Any]:
        """This entry as the JSON object of the universe document."""
        return as_json_object(self)


class Universe(msgspec.Struct, frozen=True):
    """The symbols one exchange's workers serve: Tier 1 in rank order, then Tier 2-only by name."""

    exchange_id: ExchangeId
    exchange: ExchangeName
    updated_at: Annotated[IsoTime, Meta(description="when Dagster published it (ISO 8601, UTC)")]
    symbols: Annotated[tuple[UniverseEntry, ...], Meta(description="each symbol once")]


def as_json_object(value: msgspec.Struct) -> dict[str, Any]:
    """A Struct as the JSON object it encodes to (lists, not tuples)."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _reason(exc: msgspec.ValidationError) -> str:
    return str(exc).replace(" - at `$`", "")


def _preview(item: object) -> str:
    try:
        return str(item)[:60]
    except RecursionError:
        return f"a deeply nested {type(item).__name__}"


def decode_entry(item: object) -> UniverseEntry:
    """One entry of `symbols` (as decoded JSON); raises UniverseError saying what is wrong."""
    try:
        return msgspec.convert(item, UniverseEntry)
    except msgspec.ValidationError as exc:
        raise UniverseError(_reason(exc)) from None


def decode_universe(raw: bytes | str) -> Universe:
    """The whole document, every entry valid; raises UniverseError otherwise."""
    try:
        return msgspec.json.decode(raw, type=Universe)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise UniverseError(f"the universe is not valid JSON ({exc})") from None
    except msgspec.ValidationError as exc:
        raise UniverseError(f"invalid universe: {exc}") from None


def decode_entries_leniently(raw: bytes | str) -> tuple[tuple[UniverseEntry, ...], tuple[str, ...]]:
    """(valid entries, each symbol once, first wins; the rejected ones with the reason).

    Only `symbols` is read: one bad entry must not stop a worker from serving the others, and
    the document's header is not needed to do so. Raises UniverseError when there is no list.
    """
    try:
        doc = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise UniverseError(f"the universe is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("symbols"), list):
        raise UniverseError("the universe has no 'symbols' list")
    entries: list[UniverseEntry] = []
    rejected: list[str] = []
    seen: set[str] = set()
    for item in doc["symbols"]:
        try:
            entry = decode_entry(item)
        except UniverseError as exc:
            rejected.append(f"{_preview(item)}: {exc}")
            continue
        if entry.symbol not in seen:
            seen.add(entry.symbol)
            entries.append(entry)
    return tuple(entries), tuple(rejected)
