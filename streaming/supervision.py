"""Process supervision for `livermore up`: signals from the first instant, one `up` per home,
process groups stopped whole, and "is this port served by my process?"."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from streaming.errors import UsageError


class StopRequested(BaseException):
    """SIGINT or SIGTERM arrived: unwind, stopping what was started (BaseException: no `except
    Exception` on the way may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """SIGINT/SIGTERM raise StopRequested where the program is, except inside `deferred()` blocks
    (starting a child, starting Redis), which finish first, and once `stopping` is set."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stopping = False
        self._depth = 0

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum
        if first and self._depth == 0 and not self.stopping:
            raise StopRequested(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.signum is not None and not self.stopping:
            raise StopRequested(self.signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(leader: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds, every process left in the group `leader` started
    (start_new_session=True), and reap the leader."""
    pgid = leader.pid
    leader.poll()  # a leader that exited must not linger as a zombie member of its group
    if not _group_alive(pgid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        leader.poll()
        if not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    leader.wait()


def listening_pid_in_tree(port: int, root_pid: int) -> bool:
    """True when the process listening on 127.0.0.1:`port` is `root_pid` or one of its descendants."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        tree = {root_pid, *(p.pid for p in root.children(recursive=True))}
    except psutil.Error:
        return False
    for pid in tree:
        with contextlib.suppress(psutil.Error):
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                    return True
    return False


class UpLock:
    """One `livermore up` per home: an exclusive lock on <home>/up.lock, which also says who holds it."""

    def __init__(self, home: Path, port: int, offline: bool) -> None:
        self.path = home / "up.lock"
        self.record = {"pid": os.getpid(), "port": port, "offline": offline,
                       "since": datetime.now(UTC).isoformat(timespec="seconds")}
        self._fh: IO[str] | None = None

    def __enter__(self) -> UpLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fh = os.fdopen(fd, "r+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_record(fh)
            fh.close()
            raise UsageError(
                f"`livermore up` is already running on {self.path.parent} (pid {holder.get('pid', '?')}, "
                f"port {holder.get('port', '?')}, since {holder.get('since', '?')}); stop it first "
                "(Ctrl-C in its terminal, or kill that pid), or use another LIVERMORE_HOME") from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(self.record))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.close()  # closing releases the lock
            self._fh = None


def _read_record(fh: IO[str]) -> dict[str, Any]:
    try:
        fh.seek(0)
        record = json.loads(fh.read() or "{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
