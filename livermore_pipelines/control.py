"""Talking to the streaming worker from Dagster over the command stream, tolerant of a worker that is not there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from livermore_pipelines.live_health import RUNNING_STATES
from streaming.control.status import read_status


def connection_state(r: redis.Redis, exchange_id: int) -> dict[str, str]:
    return read_status(r, exchange_id)


def live_workers(r: redis.Redis, max_age_s: float = 15) -> list[dict[str, Any]]:
    from streaming.control.client import live_workers as _live_workers

    return _live_workers(r, max_age_s=max_age_s)


def send(r: redis.Redis, command: str, *, exchange: str | None = None, user: int | None = None,
         timeout: float = 30.0, on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Send a command and wait; with `on_progress`, a `start` reports the exchange's warm-up as it runs."""
    from streaming.control.client import ControlClient

    return ControlClient(r).send(command, exchange=exchange, user=user, timeout=timeout, on_progress=on_progress)


def reload_symbols_if_running(r: redis.Redis, exchange_id: int, exchange: str, timeout: float) -> str:
    """Ask a running worker to pick up a new universe; a one-line outcome, never an exception."""
    state = connection_state(r, exchange_id).get("connection_state", "idle")
    if state not in RUNNING_STATES:
        return f"not sent: {exchange} is {state}"
    try:
        if not live_workers(r):
            return "not sent: no live worker"
        response = send(r, "reload-symbols", exchange=exchange, timeout=timeout)
    except Exception as exc:  # the universe is saved; a worker hiccup must not fail the asset
        return f"failed: {type(exc).__name__}: {exc}"
    if response.get("status") != "success":
        return f"refused: {response.get('reason') or response}"
    return "sent"


def ensure_worker_running(settings: Any, r: redis.Redis) -> dict[str, Any]:
    from streaming.control.client import ensure_worker_running as _ensure

    return _ensure(settings, r)
