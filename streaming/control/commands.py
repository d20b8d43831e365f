"""Commands to workers: the wire format on the Redis stream, parsed and validated without I/O.

An entry of streaming.keys.COMMANDS_STREAM has string fields
    id, command, exchange, user, symbols (comma-separated), sent_at, expires_at (epoch ms), target
or a single `json` field holding the same object (plus `id` beside it so a malformed body can
still be answered). target is "*" (every worker), a worker id, or "shard:K/N".
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import orjson

from streaming.keys import InvalidSymbol, validate_symbol

VERBS = ("start", "stop", "status", "reload-symbols")
NEEDS_EXCHANGE = frozenset({"start", "reload-symbols"})
DEFAULT_TTL_MS = 60_000
_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_EXCHANGE_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_TARGET_RE = re.compile(r"^(\*|shard:\d{1,4}/\d{1,4}|[A-Za-z0-9._:-]{1,200})$")


class CommandError(ValueError):
    """A command that cannot be executed; `command_id` is set when the sender can be answered."""

    def __init__(self, reason: str, command_id: str | None = None, target: str = "*") -> None:
        super().__init__(reason)
        self.reason = reason
        self.command_id = command_id
        self.target = target


class CommandExpired(CommandError):
    pass


@dataclass(frozen=True)
class Command:
    id: str
    verb: str
    exchange: str | None = None
    user: int | None = None
    symbols: tuple[str, ...] | None = None
    sent_at_ms: int = 0
    expires_at_ms: int = 0
    target: str = "*"

    def to_fields(self) -> dict[str, str]:
        return {
            "id": self.id,
            "command": self.verb,
            "exchange": self.exchange or "",
            "user": "" if self.user is None else str(self.user),
            "symbols": ",".join(self.symbols) if self.symbols is not None else "",
            "sent_at": str(self.sent_at_ms),
            "expires_at": str(self.expires_at_ms),
            "target": self.target,
        }


def new_command_id() -> str:
    return uuid.uuid4().hex


def make_command(verb: str, *, now_ms: int, exchange: str | None = None, user: int | None = None,
                 symbols: list[str] | tuple[str, ...] | None = None, target: str = "*",
                 ttl_ms: int = DEFAULT_TTL_MS, command_id: str | None = None) -> Command:
    """A validated command, ready for `to_fields()`; invalid arguments raise CommandError."""
    fields = Command(
        id=command_id or new_command_id(), verb=verb, exchange=exchange, user=user,
        symbols=tuple(symbols) if symbols is not None else None, sent_at_ms=now_ms,
        expires_at_ms=now_ms + ttl_ms, target=target,
    ).to_fields()
    return parse_command(fields, now_ms=now_ms)


def _epoch_ms(value: object, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise CommandError(f"{name} must be epoch milliseconds, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d{1,15}", text):
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None:
                return int(parsed.timestamp() * 1000)
    raise CommandError(f"{name} must be epoch milliseconds or an ISO time with a zone, got {str(value)[:40]!r}")


def _entry_ms(entry_id: str | None) -> int | None:
    if entry_id and "-" in entry_id and entry_id.split("-", 1)[0].isdigit():
        return int(entry_id.split("-", 1)[0])
    return None


def _body(fields: Mapping[str, str]) -> tuple[str | None, dict[str, object]]:
    raw_id = fields.get("id")
    if "json" in fields:
        try:
            body = orjson.loads(fields["json"])
        except orjson.JSONDecodeError as exc:
            raise CommandError(f"malformed command: invalid JSON ({exc})", _valid_id(raw_id)) from None
        if not isinstance(body, dict):
            raise CommandError("malformed command: the JSON body must be an object", _valid_id(raw_id))
        return _valid_id(raw_id if raw_id is not None else body.get("id")), body
    return _valid_id(raw_id), dict(fields)


def _valid_id(value: object) -> str | None:
    return value if isinstance(value, str) and _ID_RE.match(value) else None


def parse_command(fields: Mapping[str, str], *, now_ms: int, entry_id: str | None = None,
                  default_ttl_ms: int = DEFAULT_TTL_MS) -> Command:
    """Validate one stream entry. Raises CommandError (CommandExpired when stale) with the reason."""
    command_id, body = _body(fields)
    if command_id is None:
        raise CommandError("malformed command: missing or invalid id (1-64 of letters, digits, . _ -)")

    def fail(reason: str) -> CommandError:
        return CommandError(reason, command_id)

    verb = body.get("command")
    if not isinstance(verb, str) or not verb:
        raise fail("malformed command: missing field 'command'")
    if verb not in VERBS:
        raise fail(f"unknown command {verb[:40]!r}; expected one of {', '.join(VERBS)}")

    exchange = body.get("exchange") or None
    if exchange is not None and (not isinstance(exchange, str) or not _EXCHANGE_RE.match(exchange)):
        raise fail(f"invalid exchange name {str(exchange)[:40]!r}: lower-case letters, digits and _")
    if verb in NEEDS_EXCHANGE and exchange is None:
        raise fail(f"{verb} needs an exchange (field 'exchange')")

    user_raw = body.get("user")
    user: int | None = None
    if user_raw not in (None, ""):
        if isinstance(user_raw, bool) or not (isinstance(user_raw, int) or (isinstance(user_raw, str)
                                                                             and user_raw.isdigit())):
            raise fail(f"user must be a positive integer id, got {str(user_raw)[:40]!r}")
        user = int(user_raw)
        if user <= 0:
            raise fail(f"user must be a positive integer id, got {user}")

    symbols_raw = body.get("symbols")
    symbols: tuple[str, ...] | None = None
    if symbols_raw not in (None, ""):
        items = symbols_raw.split(",") if isinstance(symbols_raw, str) else symbols_raw
        if not isinstance(items, list | tuple):
            raise fail("symbols must be a comma-separated string or a list")
        try:
            symbols = tuple(validate_symbol(s.strip() if isinstance(s, str) else s) for s in items)
        except InvalidSymbol as exc:
            raise fail(str(exc)) from None

    target = body.get("target") or "*"
    if not isinstance(target, str) or not _TARGET_RE.match(target):
        raise fail(f"invalid target {str(target)[:40]!r}: '*', a worker id or 'shard:K/N'")

    try:
        sent_at = _epoch_ms(body.get("sent_at"), "sent_at")
        expires_at = _epoch_ms(body.get("expires_at"), "expires_at")
    except CommandError as exc:
        raise fail(exc.reason) from None
    if sent_at is None:
        sent_at = _entry_ms(entry_id) or now_ms
    if expires_at is None:
        expires_at = sent_at + default_ttl_ms
    command = Command(command_id, verb, exchange, user, symbols, sent_at, expires_at, target)
    if now_ms > expires_at:
        raise CommandExpired(
            f"expired: sent {(now_ms - sent_at) / 1000:.1f}s ago, valid for "
            f"{(expires_at - sent_at) / 1000:.1f}s; send it again", command_id, target)
    return command


def is_for(target: str, worker_id: str, shard: str | None) -> bool:
    """Whether a worker (its id, its shard label "K/N" or None) must execute a command sent to `target`."""
    return target in ("*", "", worker_id) or (shard is not None and target == f"shard:{shard}")
