"""ensure_worker_running: start a detached `livermore worker` when none has a fresh heartbeat.

Two callers at once (two Dagster runs) must not start two workers for one shard: the spawn
happens under a redis-py Lock (keys.spawn_lock) and the heartbeats are checked again inside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

import redis
from redis.exceptions import LockError

from streaming import keys
from streaming.control.heartbeat import live_workers
from streaming.errors import UsageError
from streaming.settings import Settings


class WorkerSpawnError(UsageError):
    pass


# Detached workers outlive this process; holding their Popen objects keeps Python from warning
# that a child is "still running" when the object is collected.
_spawned: list[subprocess.Popen] = []


def spawned_workers() -> list[subprocess.Popen]:
    """The workers this process spawned that are still running (newest last)."""
    return [p for p in _spawned if p.poll() is None]


def stop_spawned_workers(timeout: float = 30.0) -> int:
    """SIGTERM the workers this process spawned and reap them; return how many were running.

    For embedders and tests that own the lifetime of what they spawned (a detached worker
    normally outlives its spawner on purpose).
    """
    running = 0
    for proc in list(_spawned):
        if proc.poll() is None:
            running += 1
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        _spawned.remove(proc)
    return running


def _serving(workers: list[dict[str, Any]], shard: str | None) -> dict[str, Any] | None:
    for w in workers:
        if shard is None or w.get("shard") in (None, shard):
            return w
    return None


def _worker_env(settings: Settings) -> dict[str, str]:
    return settings.child_env(os.environ)


def spawn_worker(settings: Settings, args: list[str] | None = None) -> subprocess.Popen:
    """A detached `python -m streaming` (its own session: it outlives the caller) logging to logs/worker.log."""
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "worker.log", "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "streaming", *(args or [])], stdin=subprocess.DEVNULL,
                                stdout=fh, stderr=subprocess.STDOUT, env=_worker_env(settings),
                                start_new_session=True, close_fds=True)
    _spawned.append(proc)
    return proc


def _wait_heartbeat(redis_client: redis.Redis, timeout: float, pid: int | None = None,
                    shard: str | None = None, proc: subprocess.Popen | None = None,
                    log_path: str = "") -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = live_workers(redis_client)
        match = next((w for w in workers if w.get("pid") == pid), None) if pid else _serving(workers, shard)
        if match:
            return match
        if proc is not None and proc.poll() is not None:
            raise WorkerSpawnError(f"the worker exited with code {proc.returncode} before its first heartbeat; "
                                   f"see {log_path}")
        time.sleep(0.05)
    return None


def ensure_worker_running(settings: Settings, redis_client: redis.Redis, *, shard: str | None = None,
                          args: list[str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """{spawned, worker_id, pid}: the live worker (for `shard`, None = any), spawning one if needed."""
    found = _serving(live_workers(redis_client), shard)
    if found:
        return {"spawned": False, "worker_id": found["worker_id"], "pid": found.get("pid")}
    lock = redis_client.lock(keys.spawn_lock(shard), timeout=keys.SPAWN_LOCK_TTL_S)
    deadline = time.monotonic() + timeout
    while not lock.acquire(blocking=False):
        # someone else is spawning: their worker's heartbeat is the answer
        found = _serving(live_workers(redis_client), shard)
        if found:
            return {"spawned": False, "worker_id": found["worker_id"], "pid": found.get("pid")}
        if time.monotonic() > deadline:
            raise WorkerSpawnError(f"another caller holds {keys.spawn_lock(shard)} and no worker appeared "
                                   f"within {timeout:g}s")
        time.sleep(0.05)
    try:
        found = _serving(live_workers(redis_client), shard)
        if found:
            return {"spawned": False, "worker_id": found["worker_id"], "pid": found.get("pid")}
        worker_args = list(args or [])
        if shard and "--shard" not in worker_args:
            worker_args += ["--shard", shard]
        proc = spawn_worker(settings, worker_args)
        log_path = str(settings.home / "logs" / "worker.log")
        beat = _wait_heartbeat(redis_client, max(1.0, deadline - time.monotonic()), pid=proc.pid, proc=proc,
                               log_path=log_path)
        if beat is None:
            raise WorkerSpawnError(f"the worker (pid {proc.pid}) wrote no heartbeat within {timeout:g}s; "
                                   f"see {log_path}")
        return {"spawned": True, "worker_id": beat["worker_id"], "pid": proc.pid}
    finally:
        with contextlib.suppress(LockError):  # expired meanwhile: nothing of ours to release
            lock.release()
