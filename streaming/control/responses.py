"""Responses to a command: a Redis LIST per command (keys.command_responses), oldest first.

Every worker that executes a command pushes an `ack` when it takes it, then one final
`success` or `error` with a reason (streaming.contracts.commands.CommandResponse). The list
expires, so unanswered clients leave no litter.
"""

from __future__ import annotations

from typing import Any

import msgspec

from streaming.contracts.commands import CommandResponse, ResponseStatus, Verb, decode_response, encode_response
from streaming.timestamps import utc_iso

ACK: ResponseStatus = "ack"
SUCCESS: ResponseStatus = "success"
ERROR: ResponseStatus = "error"
FINAL = frozenset({SUCCESS, ERROR})


def response(command_id: str, worker_id: str, status: ResponseStatus, reason: str | None = None,
             result: dict[str, Any] | None = None, command: Verb | None = None) -> bytes:
    return encode_response(CommandResponse(command_id, worker_id, command, status, reason, result or {},
                                           utc_iso()))


def parse_responses(raw: list[str | bytes]) -> list[dict[str, Any]]:
    """Decoded responses, oldest first; malformed entries are dropped (a client must not crash)."""
    out = []
    for item in raw:
        try:
            out.append(msgspec.to_builtins(decode_response(item)))
        except (msgspec.DecodeError, RecursionError):
            continue
    return out


def aggregate(finals: list[dict[str, Any]]) -> dict[str, Any]:
    """One answer out of the final responses of several workers (one worker: its own answer)."""
    if len(finals) == 1:
        only = finals[0]
        return {"status": only["status"], "reason": only.get("reason"), "result": only.get("result") or {},
                "responses": finals}
    errors = [f"{r.get('worker_id')}: {r.get('reason')}" for r in finals if r["status"] != SUCCESS]
    result: dict[str, Any] = {"workers": {r.get("worker_id"): r.get("result") or {} for r in finals}}
    counts = [r.get("result", {}).get("symbols") for r in finals]
    if counts and all(isinstance(c, int) for c in counts):
        result["symbols"] = sum(counts)
    return {"status": ERROR if errors else SUCCESS, "reason": "; ".join(errors) or None, "result": result,
            "responses": finals}
