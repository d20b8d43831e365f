"""Control-plane keys that streaming/keys.py does not (yet) define.

Kept here so every name is still built in one place; they belong in streaming/keys.py.
"""

from __future__ import annotations

# Commands and lifecycle streams are trimmed approximately to these lengths.
COMMANDS_MAXLEN = 10_000
LIFECYCLE_MAXLEN = 100_000
RESPONSES_TTL_S = 600


def worker_cursor(worker_id: str) -> str:
    """Last command-stream id a worker has handled: a restarted worker with the same id resumes there."""
    return f"worker:{worker_id}:cursor"


def spawn_lock(shard: str | None) -> str:
    """SET NX PX lock held while one caller spawns a worker for a shard (or for everything)."""
    return f"worker:spawn-lock:{shard or 'all'}"
