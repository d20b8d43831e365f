"""The measured processes: a private Redis and database, `livermore worker` subprocesses, RSS,
and command wall times. Everything runs on 127.0.0.1 under one temporary directory."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import redis

from bench import frames as fr

PYTHON = sys.executable
LIVERMORE = Path(PYTHON).parent / "livermore"  # the console script of this virtualenv
EXCHANGE_ID = 2  # binance in the seeded exchanges table


def source_tree(text: str) -> Path:
    """argparse type: a source tree holding `streaming/`, another version of the worker's code
    (e.g. `git archive <commit> streaming | tar -x -C DIR`)."""
    path = Path(text)
    if not (path / "streaming" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text} holds no streaming/ package")
    return path


def cpu_ms(pid: int) -> float:
    """CPU time a process has run so far (its live threads; schedstat), in ms; 0 once it is gone.
    A thread that ends between two readings takes its time with it: the workers measured here
    keep their threads."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return total / 1e6


class CpuMeter:
    """The CPU time of named groups of processes over a stretch of time: `start()`, then
    `taken()` -> {name: ms} since the start."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._at: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(cpu_ms(pid) for pid in group) for name, group in self.pids.items()}

    def start(self) -> None:
        self._at = self._now()

    def taken(self) -> dict[str, float]:
        return {name: ms - self._at.get(name, 0.0) for name, ms in self._now().items()}


class ScriptMeter:
    """The time Redis spent running scripts (`INFO commandstats`, EVALSHA) over a stretch:
    `start()`, then `taken()` -> ms."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._at = 0.0

    def _now(self) -> float:
        stats = self.client.info("commandstats").get("cmdstat_evalsha")
        return stats["usec"] / 1000 if stats else 0.0

    def start(self) -> None:
        self._at = self._now()

    def taken(self) -> float:
        return self._now() - self._at


def rss_kb(pid: int) -> int:
    """Resident set size (VmRSS) of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Platform:
    """A private redis-server and a migrated SQLite database (the worker's settings), with the
    exchanges mirrored into Redis as Dagster's `exchanges` asset does on a running platform."""

    def __init__(self, root: Path) -> None:
        from streaming.redis_server import RedisServer

        self.root = root
        self.redis = RedisServer(root / "redis", persistent=False)
        self.redis_url = ""
        self.database_url = f"sqlite:///{root / 'livermore.db'}"

    def __enter__(self) -> Platform:
        from streaming.db.migrate import upgrade

        (self.root / "redis").mkdir(parents=True, exist_ok=True)
        self.redis_url = self.redis.start()
        upgrade(self.database_url)
        self._mirror_exchanges()
        return self

    def _mirror_exchanges(self) -> None:
        from livermore_pipelines.store import mirror_exchanges
        from streaming.db.engine import make_engine

        engine = make_engine(self.database_url)
        try:
            with engine.connect() as conn, self.client() as r:
                mirror_exchanges(conn, r)
        finally:
            engine.dispose()

    def __exit__(self, *exc: object) -> None:
        self.redis.stop()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    @property
    def redis_pid(self) -> int:
        assert self.redis.process is not None, "the platform's Redis runs as a child"
        return self.redis.process.pid

    def flush(self) -> None:
        with self.client() as r:
            r.flushall()
        self._mirror_exchanges()

    def env(self, ws_url: str = "", rest_url: str = "") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVERMORE_")}
        env.update(LIVERMORE_HOME=str(self.root / "home"), LIVERMORE_REDIS_URL=self.redis_url,
                   LIVERMORE_DATABASE_URL=self.database_url)
        if ws_url:
            env.update(LIVERMORE_BINANCE_WS_URL=ws_url, LIVERMORE_BINANCE_REST_URL=rest_url)
        return env


class Worker:
    """`python -m streaming` (= `livermore worker`) serving S00000USDT... on Binance (all 5 timeframes), or idle."""

    _n = 0

    def __init__(self, platform: Platform, n_symbols: int = 0, ws_url: str = "", rest_url: str = "",
                 src: Path | None = None) -> None:
        Worker._n += 1
        self.worker_id = f"bench-{os.getpid()}-{Worker._n}"
        self.args = [PYTHON, "-m", "streaming", "--worker-id", self.worker_id]  # = livermore worker
        if src is not None:  # `python -m streaming` from another source tree (its own dependencies are ours)
            run = (f"import sys; sys.path.insert(0, {str(src)!r}); from streaming.cli import main; "
                   "sys.exit(main(['worker', *sys.argv[1:]]))")
            self.args = [PYTHON, "-c", run, *self.args[3:]]
        if n_symbols:
            self.args += ["--autostart", "binance", "--no-warmup",
                          "--symbols", "binance=" + ",".join(fr.symbol(k) for k in range(n_symbols))]
        self.env = platform.env(ws_url, rest_url)
        self.platform = platform
        self.log_path = platform.root / f"{self.worker_id}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Worker:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> None:
        """Raise with the log's tail if the worker exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker exited with {self.proc.returncode}:\n{tail}")

    def wait_heartbeat(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self.platform.client() as r:
            while not r.exists(f"worker:{self.worker_id}:heartbeat"):
                self.alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no heartbeat from worker {self.worker_id} within {timeout:g}s")
                time.sleep(0.1)

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def settled_rss_kb(self, seconds: float = 2.0) -> int:
        """RSS once it stopped moving for a moment (after a heartbeat or two)."""
        time.sleep(seconds)
        return self.rss_kb()


def wall_ms(args: list[str], repeat: int) -> float:
    """Median wall time of running `args` to completion, in ms."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def bare_python_rss_kb() -> int:
    """RSS of an interpreter that imported nothing of ours: the floor under any Python process."""
    proc = subprocess.Popen([PYTHON, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        return rss_kb(proc.pid)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
