"""Commands to workers (stream worker:commands) and their answers (list worker:responses:{id}).

A stream entry has string fields `id, command, exchange, user, symbols` (comma-separated),
`sent_at, expires_at` (epoch ms, or ISO 8601 with a zone) and `target`, or a single `json` field
holding the same object (with `id` beside it, so a malformed body can still be answered).
`decode_command_entry` turns any entry, whatever bytes it holds, into a Command or a
CommandError with a one-line reason: one bad entry can never stop a worker's command loop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import msgspec
import orjson
from msgspec import Meta

from streaming.contracts.fields import (
    COMMAND_ID_PATTERN,
    TARGET_PATTERN,
    CommandId,
    EpochMs,
    ExchangeName,
    IsoTime,
    Symbol,
    Target,
    UserId,
    WorkerId,
)
from streaming.keys import InvalidSymbol, validate_symbol

Verb = Literal["start", "stop", "status", "reload-symbols"]
VERBS: tuple[str, ...] = get_args(Verb)
NEEDS_EXCHANGE = frozenset({"start", "reload-symbols"})
DEFAULT_TTL_MS = 60_000

_ID_RE = re.compile(COMMAND_ID_PATTERN)
_TARGET_RE = re.compile(TARGET_PATTERN)
_MS_RE = re.compile(r"[0-9]{1,15}")
_DIGITS_RE = re.compile(r"[0-9]{1,30}")


class CommandError(ValueError):
    """A command that cannot be executed. `command_id` is set when the sender can be answered;
    `target` says which workers answer; `verb` is the command's verb when it had a valid one."""

    def __init__(self, reason: str, command_id: str | None = None, target: str = "*",
                 verb: Verb | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.command_id = command_id
        self.target = target
        self.verb = verb


class CommandExpired(CommandError):
    pass


class Command(msgspec.Struct, frozen=True):
    """A command to the workers (the JSON body form; the stream form has the same names)."""

    id: Annotated[CommandId, Meta(description=(
        "unique per command, 1-64 of letters, digits and . _ -; answers go to worker:responses:{id}"))]
    verb: Annotated[Verb, Meta(description="what to do")] = msgspec.field(name="command")
    exchange: Annotated[ExchangeName | None, Meta(description=(
        "the exchange (required by start and reload-symbols; stop without one stops everything)"))] = None
    user: Annotated[UserId | None, Meta(description="the user the command is for (not used by the worker yet)")] = None
    symbols: Annotated[tuple[Symbol, ...] | None, Meta(description=(
        "start only: exactly these symbols instead of the universe (comma-separated in the stream form)"))] = None
    sent_at_ms: Annotated[EpochMs, Meta(description=(
        "when it was sent, epoch ms (default: the stream entry's time)"))] = msgspec.field(default=0, name="sent_at")
    expires_at_ms: Annotated[EpochMs, Meta(description=(
        "epoch ms; answered `expired` and not executed after this (default: sent_at + 60 s)"))] = msgspec.field(
        default=0, name="expires_at")
    target: Annotated[Target, Meta(description=(
        "which workers execute it: `*` or empty (every worker), a worker id, or `shard:K/N` (the worker "
        "started with `--shard K/N`)"))] = "*"

    def __post_init__(self) -> None:
        if self.verb in NEEDS_EXCHANGE and self.exchange is None:
            raise ValueError(f"{self.verb} needs an exchange (field 'exchange')")

    def to_fields(self) -> dict[str, str]:
        """The stream form: every field a string, empty when absent."""
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


ResponseStatus = Literal["ack", "success", "error"]


class CommandResponse(msgspec.Struct, frozen=True):
    """One worker's answer to a command: an `ack` when it takes it, then `success` or `error`.
    An expired command gets a single `error` whose reason starts with `expired`."""

    command_id: CommandId
    worker_id: WorkerId
    command: Annotated[Verb | None, Meta(description="the command's verb (null when it had no valid one)")]
    status: ResponseStatus
    reason: Annotated[str | None, Meta(description="why it failed (null on success and ack)")]
    result: Annotated[dict[str, Any], Meta(description=(
        "what the command did, e.g. start: the exchange, its state and symbol count; status: the "
        "worker's exchanges"))]
    at: Annotated[IsoTime, Meta(description="when the worker answered")]


# --- decoding one stream entry ---------------------------------------------------------------------

def _preview(value: object) -> str:
    try:
        text = value if isinstance(value, str) else str(value)
    except (RecursionError, ValueError):  # deep nesting; ints beyond str()'s digit limit
        text = f"<{type(value).__name__}>"
    return repr(text[:40])


def _valid_id(value: object) -> str | None:
    return value if isinstance(value, str) and _ID_RE.match(value) else None


def _valid_target(value: object) -> str:
    return value if isinstance(value, str) and _TARGET_RE.match(value) else "*"


def _text_fields(fields: Mapping[Any, Any]) -> dict[str, str]:
    """Field names and values as text; CommandError when one is not UTF-8 (answerable by a good id)."""
    out: dict[str, str] = {}
    bad: list[str] = []
    for key, value in fields.items():
        try:
            name = key.decode() if isinstance(key, bytes) else str(key)
        except UnicodeDecodeError:
            bad.append(repr(key[:40]))
            continue
        try:
            out[name] = value.decode() if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            bad.append(repr(name[:40]))
    if bad:
        command_id = _valid_id(out.get("id"))
        raise CommandError(f"malformed command: field {bad[0]} is not valid UTF-8", command_id,
                           _valid_target(out.get("target")))
    return out


def _body(fields: Mapping[str, str]) -> tuple[str | None, dict[str, Any]]:
    raw_id = fields.get("id")
    if "json" not in fields:
        return _valid_id(raw_id), dict(fields)
    try:
        body = orjson.loads(fields["json"])  # refuses nesting deeper than 1024 and lone surrogates
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"malformed command: invalid JSON ({exc})", _valid_id(raw_id)) from None
    if not isinstance(body, dict):
        raise CommandError("malformed command: the JSON body must be an object", _valid_id(raw_id))
    return _valid_id(raw_id if raw_id is not None else body.get("id")), body


def _epoch_ms(value: object, name: str) -> object:
    """Epoch ms out of the forms senders use; anything else is returned for the Struct to refuse."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be epoch milliseconds, got a boolean")
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 1e15:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _MS_RE.fullmatch(text):
            return int(text)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return int(parsed.timestamp() * 1000)
        except (ValueError, OverflowError):  # not ISO; a time outside what datetime can shift to UTC
            pass
    return value


def _normalised(body: dict[str, Any], command_id: str) -> dict[str, Any]:
    """The stream form's strings as the typed values of the JSON form; empty values dropped."""
    out: dict[str, Any] = {k: v for k, v in body.items() if v not in (None, "")}
    out["id"] = command_id
    for name in ("exchange", "target"):  # an empty or false value means "not given"
        if name in out and not out[name]:
            del out[name]
    user = out.get("user")
    if isinstance(user, str) and _DIGITS_RE.fullmatch(user):
        out["user"] = int(user)
    if "symbols" in out:
        items = out["symbols"]
        if isinstance(items, str):
            items = items.split(",")
        if not isinstance(items, list | tuple):
            raise ValueError("symbols must be a comma-separated string or a list")
        out["symbols"] = [s.strip() if isinstance(s, str) else s for s in items]
    for name in ("sent_at", "expires_at"):
        if name in out:
            out[name] = _epoch_ms(out[name], name)
    return out


_FIELD_AT = re.compile(r"at `\$\.(\w+)(?:\[(\d+)\])?`")


def _reason(exc: msgspec.ValidationError, body: Mapping[str, Any]) -> str:
    """A one-line reason naming the field and the value it got."""
    text = str(exc)
    missing = re.search(r"missing required field `(\w+)`", text)
    if missing:
        return f"malformed command: missing field {missing.group(1)!r}"
    at = _FIELD_AT.search(text)
    if at is None:  # a rule across fields (Command.__post_init__)
        return text.replace(" - at `$`", "")
    name, index = at.group(1), at.group(2)
    value = body.get(name)
    if name == "command":
        return f"unknown command {_preview(value)}; expected one of {', '.join(VERBS)}"
    if name == "exchange":
        return f"invalid exchange name {_preview(value)}: lower-case letters, digits and _"
    if name == "user":
        return f"user must be a positive integer id, got {_preview(value)}"
    if name == "symbols" and index is not None and isinstance(value, list):
        item = value[int(index)]
        try:  # the adapters' message, about at most 41 characters of the item (enough to fail as it did)
            validate_symbol(item[:41] if isinstance(item, str) else item)
        except InvalidSymbol as bad:
            return str(bad)
    if name == "target":
        return f"invalid target {_preview(value)}: '*', a worker id or 'shard:K/N'"
    if name in ("sent_at", "expires_at"):
        return f"{name} must be epoch milliseconds or an ISO time with a zone, got {_preview(value)}"
    return f"malformed command: {text}"


def _entry_ms(entry_id: str | None) -> int | None:
    head = (entry_id or "").split("-", 1)[0]
    return int(head) if head.isascii() and head.isdigit() and len(head) <= 15 else None


def decode_command_entry(fields: Mapping[Any, Any], *, now_ms: int, entry_id: str | None = None,
                         default_ttl_ms: int = DEFAULT_TTL_MS) -> Command:
    """One stream entry (str or bytes fields) as a Command; raises CommandError (CommandExpired
    when stale) with the reason, and never anything else."""
    text = _text_fields(fields)
    command_id, body = _body(text)
    target = _valid_target(body.get("target") or "*")
    verb = body.get("command") if body.get("command") in VERBS else None
    if command_id is None:
        raise CommandError("malformed command: missing or invalid id (1-64 of letters, digits, . _ -)",
                           None, target, verb)
    try:
        typed = _normalised(body, command_id)
    except ValueError as exc:
        raise CommandError(str(exc), command_id, target, verb) from None
    typed.setdefault("sent_at", _entry_ms(entry_id) or now_ms)
    if "expires_at" not in typed and type(typed["sent_at"]) is int:
        typed["expires_at"] = typed["sent_at"] + default_ttl_ms
    try:
        command = msgspec.convert(typed, Command)
    except msgspec.ValidationError as exc:
        raise CommandError(_reason(exc, typed), command_id, target, verb) from None
    except (TypeError, ValueError, RecursionError, OverflowError) as exc:  # nothing a sender writes may escape
        raise CommandError(f"malformed command: {type(exc).__name__}", command_id, target, verb) from None
    if now_ms > command.expires_at_ms:
        raise CommandExpired(
            f"expired: sent {(now_ms - command.sent_at_ms) / 1000:.1f}s ago, valid for "
            f"{(command.expires_at_ms - command.sent_at_ms) / 1000:.1f}s; send it again", command_id,
            command.target, command.verb)
    return command


def encode_response(response: CommandResponse) -> bytes:
    return msgspec.json.encode(response)


_response_decoder = msgspec.json.Decoder(CommandResponse)


def decode_response(raw: bytes | str) -> CommandResponse:
    """Raises msgspec.DecodeError / ValidationError on a malformed answer."""
    return _response_decoder.decode(raw)
