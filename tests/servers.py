"""Real servers for the test session: a redis-server and a throwaway PostgreSQL cluster.

LIVERMORE_TEST_REDIS_URL / LIVERMORE_TEST_DATABASE_URL point the suite at existing servers
instead. PostgreSQL refuses to run as root, so as root initdb and pg_ctl run as `postgres`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streaming.redis_server import RedisServer, free_port

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _pg_tool(name: str) -> str:
    for d in PG_BIN_DIRS:
        if (d / name).exists():
            return str(d / name)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: apt-get install postgresql")
    return found


def find_runuser() -> str | None:
    """runuser's path: it is in /usr/sbin, which a minimal PATH (cron, `env -i`, some CI images)
    does not list."""
    return shutil.which("runuser") or next((p for p in ("/usr/sbin/runuser", "/sbin/runuser")
                                            if os.access(p, os.X_OK)), None)


def _runuser() -> str:
    found = find_runuser()
    if not found:
        raise RuntimeError("runuser not found (util-linux): as root, PostgreSQL's tools run as `postgres` through it")
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return [_runuser(), "-u", "postgres", "--", *cmd]


@contextmanager
def redis_server() -> Iterator[str]:
    existing = os.environ.get("LIVERMORE_TEST_REDIS_URL")
    if existing:
        yield existing
        return
    with tempfile.TemporaryDirectory(prefix="livermore-test-redis-") as d:
        server = RedisServer(Path(d), persistent=False)
        try:
            yield server.start()
        finally:
            server.stop()


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an admin URL (database `postgres`) of a PostgreSQL server."""
    existing = os.environ.get("LIVERMORE_TEST_DATABASE_URL")
    if existing:
        yield existing
        return
    base = Path(tempfile.mkdtemp(prefix="livermore-test-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(data, pw.pw_uid, pw.pw_gid)
    base.chmod(0o755)
    port = free_port()
    subprocess.run(
        _as_postgres([_pg_tool("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--no-sync"]),
        check=True, capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres([_pg_tool("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(base / "pg.log"), "-w",
                      "-t", "60", "start"]),
        check=True, capture_output=True,
    )
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([_pg_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def create_database(admin_url: str, prefix: str = "livermore_test") -> str:
    """A fresh, empty database on the server of `admin_url`; returns its URL."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `message` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
