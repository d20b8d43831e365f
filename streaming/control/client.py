"""ControlClient: send a command to the workers and wait for their final answers.

    ControlClient(redis_client).send("start", exchange="coinbase", timeout=30.0)
    -> {"status": "success"|"error", "reason": ..., "result": {...}, "responses": [...]}

The command is XADDed to keys.COMMANDS_STREAM, so a worker that starts later still gets it
until it expires. The client waits for a final answer from every live worker the command is
for (from the first one to answer when none is live yet, e.g. one is being spawned). With
`on_progress`, a `start` reports the exchange's warm-up while it waits (read from the workers'
heartbeats): the CLI draws its progress bar with it, Dagster's start op logs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import redis

from streaming import keys
from streaming.control.commands import DEFAULT_TTL_MS, is_for, make_command
from streaming.control.heartbeat import live_workers
from streaming.control.merge import sum_progress
from streaming.control.responses import ERROR, FINAL, aggregate, parse_responses
from streaming.control.spawn import ensure_worker_running

__all__ = ["ControlClient", "ensure_worker_running", "live_workers"]

POLL_S = 0.05
PROGRESS_POLL_S = 0.25

# called with {"streams_done", "streams_total", "candles", "eta_s", "started_at", "workers"}
OnProgress = Callable[[dict[str, Any]], None]


class ControlClient:
    def __init__(self, redis_client: redis.Redis, *, ttl_s: float = DEFAULT_TTL_MS / 1000) -> None:
        self.redis = redis_client
        self.ttl_ms = int(ttl_s * 1000)

    def post(self, command: str, exchange: str | None = None, user: int | None = None, *,
             symbols: list[str] | None = None, target: str = "*") -> str:
        """Queue a command; return its id. Invalid arguments raise CommandError."""
        cmd = make_command(command, now_ms=int(time.time() * 1000), exchange=exchange, user=user, symbols=symbols,
                           target=target, ttl_ms=self.ttl_ms)
        fields: dict[Any, Any] = {**cmd.to_fields()}
        self.redis.xadd(keys.COMMANDS_STREAM, fields, maxlen=keys.COMMANDS_MAXLEN, approximate=True)
        return cmd.id

    def responses(self, command_id: str) -> list[dict[str, Any]]:
        return parse_responses(cast("list[Any]", self.redis.lrange(keys.command_responses(command_id), 0, -1)))

    def send(self, command: str, exchange: str | None = None, user: int | None = None, timeout: float = 30.0,
             *, symbols: list[str] | None = None, target: str = "*", wait: bool = True,
             on_progress: OnProgress | None = None) -> dict[str, Any]:
        command_id = self.post(command, exchange, user, symbols=symbols, target=target)
        if not wait:
            return {"status": "sent", "reason": None, "result": {"command_id": command_id}, "responses": []}
        return self.wait(command_id, timeout=timeout, target=target,
                         on_progress=on_progress if command == "start" else None, exchange=exchange)

    def wait(self, command_id: str, timeout: float = 30.0, target: str = "*", *,
             on_progress: OnProgress | None = None, exchange: str | None = None) -> dict[str, Any]:
        """The merged final answers; `on_progress` gets `exchange`'s warm-up whenever it moves."""
        deadline = time.monotonic() + timeout
        next_roster = 0.0
        expected: set[str] = set()
        shown: dict[str, Any] | None = None
        while True:
            now = time.monotonic()
            if now >= next_roster:
                # workers that die meanwhile stop being waited for; new ones are not added
                beats = [w for w in live_workers(self.redis) if is_for(target, w["worker_id"], w.get("shard"))]
                live = {w["worker_id"] for w in beats}
                expected = live if next_roster == 0.0 else expected & live
                next_roster = now + (PROGRESS_POLL_S if on_progress is not None else 1.0)
                if on_progress is not None and exchange is not None:
                    progress = sum_progress([(w.get("warm_up") or {}).get(exchange) for w in beats])
                    if progress is not None and progress != shown:
                        shown = progress
                        on_progress(progress)
            answers = self.responses(command_id)
            finals = {r.get("worker_id"): r for r in answers if r["status"] in FINAL}
            if finals and (not expected or expected <= finals.keys()):
                result = aggregate(list(finals.values()))
                result["command_id"] = command_id
                return result
            if now >= deadline:
                acked = sorted({str(r.get("worker_id")) for r in answers})
                who = f"acknowledged by {', '.join(acked)} but " if acked else ""
                missing = sorted(expected - finals.keys())
                waiting = (f"waiting for {', '.join(missing)}" if missing else
                           "no worker is running; the command stays queued until it expires: start one with "
                           "`livermore worker` (or pass --spawn)")
                return {
                    "status": ERROR,
                    "reason": f"timeout: {who}no final answer within {timeout:g}s ({waiting})",
                    "result": {}, "responses": answers, "command_id": command_id,
                }
            time.sleep(POLL_S)
