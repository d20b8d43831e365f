"""Responses to a command: a Redis LIST per command (keys.command_responses), oldest first.

Every worker that executes a command pushes an `ack` when it takes it, then one final
`success` or `error` with a reason. The list expires, so unanswered clients leave no litter.
"""

from __future__ import annotations

from typing import Any

import orjson

from streaming.timestamps import utc_iso

ACK = "ack"
SUCCESS = "success"
ERROR = "error"
FINAL = frozenset({SUCCESS, ERROR})


def response(command_id: str, worker_id: str, status: str, reason: str | None = None,
             result: dict[str, Any] | None = None, command: str | None = None) -> bytes:
    return orjson.dumps({
        "command_id": command_id,
        "worker_id": worker_id,
        "command": command,
        "status": status,
        "reason": reason,
        "result": result or {},
        "at": utc_iso(),
    })


def parse_responses(raw: list[str | bytes]) -> list[dict[str, Any]]:
    """Decoded responses; entries that are not JSON objects are dropped (a client must not crash)."""
    out = []
    for item in raw:
        try:
            value = orjson.loads(item)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("status"), str):
            out.append(value)
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
