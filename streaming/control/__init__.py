"""The worker's control plane: commands over a Redis stream, responses, heartbeats, spawning.

Imports nothing from dagster: the Dagster ops and the CLI both use it.
"""

from streaming.control.client import ControlClient, ensure_worker_running, live_workers
from streaming.control.status import live_status

__all__ = ["ControlClient", "ensure_worker_running", "live_status", "live_workers"]
