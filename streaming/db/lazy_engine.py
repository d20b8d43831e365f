"""An engine made on first use, for processes that may never read the database.

The worker reads the database only when it starts or reloads an exchange (or checks --user);
importing SQLAlchemy costs an idle worker ~12 MB of its resident set, so the real engine, and
the import, wait for the first `connect()` or `begin()`.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import sqlalchemy as sa


class Connectable(Protocol):
    """What the worker asks of an engine: a `sqlalchemy.Engine` or a LazyEngine."""

    def connect(self) -> sa.Connection: ...

    def begin(self) -> AbstractContextManager[sa.Connection]: ...


class LazyEngine:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()  # first use may come from two threads (asyncio.to_thread)

    def get(self) -> sa.Engine:
        with self._lock:
            if self._engine is None:
                from streaming.db.engine import make_engine

                self._engine = make_engine(self.url)
            return self._engine

    def connect(self) -> sa.Connection:
        return self.get().connect()

    def begin(self) -> AbstractContextManager[sa.Connection]:
        return self.get().begin()

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
