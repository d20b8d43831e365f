"""Commands to workers: building one, reading one off the stream, and who must execute it.

The message itself (fields, constraints, the stream-entry decoder) is streaming.contracts.commands.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from streaming.contracts.commands import (
    DEFAULT_TTL_MS,
    NEEDS_EXCHANGE,
    VERBS,
    Command,
    CommandError,
    CommandExpired,
    decode_command_entry,
)

__all__ = ["DEFAULT_TTL_MS", "NEEDS_EXCHANGE", "VERBS", "Command", "CommandError", "CommandExpired", "is_for",
           "make_command", "new_command_id", "parse_command"]


def new_command_id() -> str:
    return uuid.uuid4().hex


def parse_command(fields: Mapping[Any, Any], *, now_ms: int, entry_id: str | None = None,
                  default_ttl_ms: int = DEFAULT_TTL_MS) -> Command:
    """One stream entry as a Command. Raises CommandError (CommandExpired when stale) with the reason."""
    return decode_command_entry(fields, now_ms=now_ms, entry_id=entry_id, default_ttl_ms=default_ttl_ms)


def make_command(verb: str, *, now_ms: int, exchange: str | None = None, user: int | None = None,
                 symbols: list[str] | tuple[str, ...] | None = None, target: str = "*",
                 ttl_ms: int = DEFAULT_TTL_MS, command_id: str | None = None) -> Command:
    """A validated command, ready for `to_fields()`; invalid arguments raise CommandError.

    Validated by decoding its own stream form: what a sender can build, a worker can read.
    """
    fields = {
        "id": command_id or new_command_id(), "command": verb, "exchange": exchange or "",
        "user": "" if user is None else str(user), "symbols": ",".join(symbols) if symbols is not None else "",
        "sent_at": str(now_ms), "expires_at": str(now_ms + ttl_ms), "target": target,
    }
    return parse_command(fields, now_ms=now_ms)


def is_for(target: str, worker_id: str, shard: str | None) -> bool:
    """Whether a worker (its id, its shard label "K/N" or None) must execute a command sent to `target`."""
    return target in ("*", "", worker_id) or (shard is not None and target == f"shard:{shard}")
