"""Which exchanges lost their worker (pure): the status says running, no live worker serves it."""

from collections.abc import Mapping, Sequence
from typing import Any

from livermore_pipelines.control import RUNNING_STATES


def orphaned_exchanges(statuses: Mapping[str, Mapping[str, str]], workers: Sequence[Mapping[str, Any]]) -> list[str]:
    """Exchanges whose status is connected/connecting while no fresh heartbeat lists them.

    A worker killed hard never writes `disconnected`, so its last state stays behind: that is
    exactly the case this finds.
    """
    served: set[str] = set()
    for w in workers:
        exchanges = w.get("exchanges")
        if isinstance(exchanges, Mapping):
            served.update(str(name) for name in exchanges)
    return sorted(name for name, status in statuses.items()
                  if status.get("connection_state") in RUNNING_STATES and name not in served)


def due_for_restart(orphans: Sequence[str], last_requested: Mapping[str, float], now: float,
                    cooldown_s: float) -> list[str]:
    """Orphans not restarted within `cooldown_s`: a restart that is still starting is not repeated."""
    return [name for name in orphans if now - float(last_requested.get(name, 0.0)) >= cooldown_s]
