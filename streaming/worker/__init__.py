"""The streaming worker: one process holding the exchange WebSockets, driven over Redis.

Idle until a `start` command (or --autostart); one ExchangeSession per exchange. No dagster here.
"""

from streaming.worker.config import WorkerConfig

__all__ = ["WorkerConfig"]
