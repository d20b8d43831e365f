"""One exchange's status out of the statuses of the workers serving it (pure, no I/O).

Each worker writes its own HASH keys.exchange_worker_status(id, worker_id); the shared
keys.exchange_status(id) is the merge of those whose worker is alive, so one shard worker
stopping does not make the exchange look down while another still streams it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streaming.timestamps import parse_utc_iso

# first match wins: connected if any live worker is connected, else connecting, else error, ...
STATE_PRECEDENCE = ("connected", "connecting", "error", "disconnected", "idle")


def _latest(values: Sequence[str]) -> str:
    stamped = [(t, v) for v in values if (t := parse_utc_iso(v)) is not None]
    return max(stamped)[1] if stamped else ""


def _earliest(values: Sequence[str]) -> str:
    stamped = [(t, v) for v in values if (t := parse_utc_iso(v)) is not None]
    return min(stamped)[1] if stamped else ""


def _by_update(item: tuple[str, Mapping[str, str]]) -> tuple[float, str]:
    stamp = parse_utc_iso(item[1].get("updated_at"))
    return (stamp.timestamp() if stamp else float("-inf"), item[0])


def live_statuses(statuses: Mapping[str, Mapping[str, str]], heartbeats: Sequence[Mapping[str, Any]],
                  own_worker_id: str | None = None) -> dict[str, Mapping[str, str]]:
    """The per-worker statuses that count: their worker has a fresh heartbeat (`heartbeats`, as
    heartbeat.fresh_heartbeats returns them) and the status was written by this run of it (not
    before its started_at: a restarted worker with a fixed id does not inherit its old state).
    `own_worker_id` (the worker merging) always counts: it is alive, it is writing.
    """
    beats = {str(b.get("worker_id")): b for b in heartbeats}
    kept: dict[str, Mapping[str, str]] = {}
    for worker_id, status in statuses.items():
        if not status.get("connection_state"):
            continue
        if worker_id != own_worker_id:
            beat = beats.get(worker_id)
            if beat is None:
                continue
            started, updated = parse_utc_iso(beat.get("started_at")), parse_utc_iso(status.get("updated_at"))
            if started is not None and (updated is None or updated < started):
                continue
        kept[worker_id] = status
    return kept


def _count(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 15 else None


def merge_warm_up(statuses: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The warm-up fields of several workers as one: counts summed, the earliest start, the
    longest time left (unknown if any is unknown while unfinished). Empty when none ran."""
    ran = [s for s in statuses if _count(s.get("warmup_total")) is not None]
    if not ran:
        return {}
    done = sum(_count(s.get("warmup_done")) or 0 for s in ran)
    total = sum(_count(s.get("warmup_total")) or 0 for s in ran)
    etas = [_count(s.get("warmup_eta_s")) for s in ran
            if (_count(s.get("warmup_done")) or 0) < (_count(s.get("warmup_total")) or 0)]
    return {
        "warmup_done": str(done),
        "warmup_total": str(total),
        "warmup_candles": "" if any(_count(s.get("warmup_candles")) is None for s in ran) else
        str(sum(_count(s.get("warmup_candles")) or 0 for s in ran)),
        "warmup_requests": "" if any(_count(s.get("warmup_requests")) is None for s in ran) else
        str(sum(_count(s.get("warmup_requests")) or 0 for s in ran)),
        "warmup_started_at": _earliest([s.get("warmup_started_at", "") for s in ran]),
        "warmup_eta_s": str(max(e for e in etas if e is not None)) if etas and None not in etas else "",
    }


def merge_statuses(statuses: Mapping[str, Mapping[str, str]], now: str) -> dict[str, str]:
    """The exchange's status hash out of the live workers' statuses (worker_id -> status hash).

    connection_state: connected if any is connected, else connecting, else error, else
    disconnected, else idle (an unknown state counts as error). connected_at: the earliest among
    the connected workers (when none is, the latest any had); last_heartbeat: the latest;
    last_error: from the most recently updated errored worker when the state is error, else the
    most recently updated non-empty one; updated_at: `now`; worker_states: JSON worker_id -> state;
    the warm-up fields as merge_warm_up makes them; stale_streams and history_missing summed. One
    worker's status comes out unchanged (apart from updated_at and worker_states).
    """
    items = sorted(statuses.items(), key=_by_update)  # oldest update first

    def state_of(status: Mapping[str, str]) -> str:
        state = status.get("connection_state", "")
        return state if state in STATE_PRECEDENCE else "error"

    states = {state_of(s) for _, s in items}
    state = next((s for s in STATE_PRECEDENCE if s in states), "idle")
    chosen = [(w, s) for w, s in items if state_of(s) == state]
    if state == "connected":
        connected_at = _earliest([s.get("connected_at", "") for _, s in chosen])
    else:
        connected_at = _latest([s.get("connected_at", "") for _, s in items])
    error_source = chosen if state == "error" else items
    errors = [s.get("last_error", "") for _, s in error_source if s.get("last_error")]
    return {
        "connection_state": state,
        "connected_at": connected_at,
        "last_heartbeat": _latest([s.get("last_heartbeat", "") for _, s in items]),
        "last_error": errors[-1] if errors else "",
        "updated_at": now,
        "worker_states": orjson.dumps({w: state_of(s) for w, s in sorted(items)}).decode(),
        **merge_warm_up([s for _, s in items]),
        **_summed("stale_streams", [s for _, s in items]),
        **_summed("history_missing", [s for _, s in items]),
    }


def _summed(name: str, statuses: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """A count field of the workers (stale streams, streams missing history), summed; nothing
    when no worker reported any."""
    counts = [c for s in statuses if (c := _count(s.get(name))) is not None]
    return {name: str(sum(counts))} if counts else {}


def sum_progress(items: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """Several workers' warm-up progress (heartbeat `warm_up` values; None: not warming up) as
    one: streams, candles and REST requests summed (None until every worker counts them), the
    earliest start, the longest ETA; None when none runs."""
    running = [p for p in items if isinstance(p, Mapping)]
    if not running:
        return None
    etas = [p.get("eta_s") for p in running]
    return {
        "streams_done": sum(int(p.get("streams_done") or 0) for p in running),
        "streams_total": sum(int(p.get("streams_total") or 0) for p in running),
        "candles": None if any(p.get("candles") is None for p in running) else
        sum(int(p.get("candles") or 0) for p in running),
        "requests": None if any(p.get("requests") is None for p in running) else
        sum(int(p.get("requests") or 0) for p in running),
        "eta_s": max(float(e) for e in etas if e is not None) if etas and None not in etas else None,
        "started_at": _earliest([str(p.get("started_at") or "") for p in running]),
        "workers": len(running),
    }
