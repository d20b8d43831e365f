"""`livermore up`: the whole platform on one machine, and nothing left behind when it stops.

up: embedded Redis (unless LIVERMORE_REDIS_URL), database migrated and seeded, Dagster
webserver + daemon (`dg dev`) on 127.0.0.1, the streaming worker idle, and with --offline the
local exchange simulator with every exchange pointed at it. A signal at any moment stops
everything started so far, in reverse order, process groups included (streaming.supervision).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from streaming.errors import UsageError
from streaming.settings import LivermoreSettings, mask_url, resolve_redis_url
from streaming.supervision import SignalGuard, stop_group

log = logging.getLogger("livermore.up")

REPO_ROOT = Path(__file__).resolve().parents[1]
EXCHANGE_NAMES = ("coinbase", "binance", "binance_us")
DEFAULT_DAGSTER_YAML = "telemetry:\n  enabled: false\n"
# Beta warnings Dagster raises about its own internals (no Livermore code passes `owners`);
# PYTHONWARNINGS matches on the message's start, so no Dagster import is needed to filter them
DAGSTER_WARNINGS_FILTER = "ignore:Parameter `owners` of initializer `SensorDefinition.__init__` is currently in beta"
READY_TIMEOUT_S = 180.0


def dagster_yaml(settings: LivermoreSettings) -> str:
    """The instance config: the repository's dagster.yaml, plus PostgreSQL storage when asked."""
    base = REPO_ROOT / "dagster.yaml"
    text = base.read_text() if base.exists() else DEFAULT_DAGSTER_YAML
    if settings.dagster_database_url is not None:
        # the variable's name, not its value: the password stays out of files Dagster shows
        text += "storage:\n  postgres:\n    postgres_url:\n      env: LIVERMORE_DAGSTER_DATABASE_URL\n"
    return text


WORKSPACE_YAML = """load_from:
  - python_module:
      module_name: livermore_pipelines.definitions
      attribute: defs
"""


def prepare_dagster_home(settings: LivermoreSettings) -> Path:
    home = settings.dagster_home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_yaml(settings))
    (home / "workspace.yaml").write_text(WORKSPACE_YAML)
    return home


def _livermore_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from streaming.cli import main; raise SystemExit(main())", *args]


def _dagster_cmd(port: int) -> list[str]:
    dg = Path(sys.executable).with_name("dg")
    program = str(dg) if dg.exists() else shutil.which("dg") or "dg"
    if not shutil.which("env"):
        raise UsageError("the `env` program is missing; it is part of coreutils")
    # `env --default-signal` undoes an inherited SIG_IGN so the dev server stops on SIGTERM
    return ["env", "--default-signal=INT,TERM", program, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
            "-p", str(port)]


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class Platform:
    settings: LivermoreSettings
    port: int = 3000
    offline: bool = False
    with_worker: bool = True
    with_notify: bool = True
    sim_args: list[str] = field(default_factory=list)
    guard: SignalGuard = field(default_factory=SignalGuard)
    children: list[Child] = field(default_factory=list)
    started_redis: bool = False
    metrics_port: int | None = None  # the worker's /metrics (None: not served)
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def _spawn(self, name: str, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Child:
        logs = self.settings.home / "logs"
        logs.mkdir(mode=0o700, parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with self.guard.deferred():  # a signal now is handled once the child is on the list (and stopped)
            fh: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed below
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                        env=env or self.env, cwd=cwd, start_new_session=True)
            finally:
                fh.close()
            child = Child(name, proc, log_path)
            self.children.append(child)
        log.info("started %s (pid %d, log %s)", name, proc.pid, log_path)
        return child

    def start_simulator(self, timeout: float = 30.0) -> dict[str, Any]:
        urls_file = self.settings.home / "sim-urls.json"
        urls_file.unlink(missing_ok=True)
        child = self._spawn("exchange-sim", _livermore_cmd("exchange-sim", "--urls-file", str(urls_file),
                                                                *self.sim_args))
        deadline = time.monotonic() + timeout
        while not urls_file.exists():
            if child.process.poll() is not None or time.monotonic() > deadline:
                raise UsageError(f"the exchange simulator did not start; see {child.log_path}")
            time.sleep(0.1)
        time.sleep(0.05)  # the file is written in one go; give the writer a moment to close it
        urls: dict[str, Any] = json.loads(urls_file.read_text())
        clock = urls.get("clock")
        if clock:
            from streaming.clock import ENV, encode_sim_clock

            self.env[ENV] = encode_sim_clock(clock["start_ms"], clock["real_start_ms"], clock["speed"])
        for name in EXCHANGE_NAMES:
            if name in urls:
                self.env[f"LIVERMORE_{name.upper()}_WS_URL"] = urls[name]["ws_url"]
                self.env[f"LIVERMORE_{name.upper()}_REST_URL"] = urls[name]["rest_url"]
        return urls

    def start(self) -> None:
        from streaming.db.migrate import upgrade
        from streaming.redis_server import embedded_redis_url

        if self.offline:
            self.start_simulator()
        if self.settings.embedded_redis:
            self.started_redis = embedded_redis_url(self.settings.home) is None
        with self.guard.deferred():  # the embedded server is started (and recorded) or not at all
            redis_url = resolve_redis_url(self.settings)
        log.info("redis: %s%s", mask_url(redis_url), " (embedded)" if self.settings.embedded_redis else "")
        database_url = self.settings.database_url.get_secret_value()
        inserted = upgrade(database_url)
        log.info("database: %s migrated (%d exchange rows seeded)", mask_url(database_url), inserted)
        dagster_home = prepare_dagster_home(self.settings)
        self.env = self.settings.child_env(self.env)
        self.env["DAGSTER_HOME"] = str(dagster_home)
        dagster_env = {**self.env, "PYTHONWARNINGS": DAGSTER_WARNINGS_FILTER}
        # cwd = DAGSTER_HOME: the dev server then finds no other dagster.yaml to warn about
        self._spawn("dagster", _dagster_cmd(self.port), cwd=dagster_home, env=dagster_env)
        if self.with_worker:
            worker_env = {**self.env, "LIVERMORE_METRICS_PORT": str(self.metrics_port or 0)}
            self._spawn("worker", _livermore_cmd("worker"), env=worker_env)
        if self.with_notify:
            self._spawn("notify", _livermore_cmd("notify"))

    def _dagster(self) -> Child:
        return next(c for c in self.children if c.name == "dagster")

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until OUR webserver answers: our process listens on the port and serves this instance."""
        from streaming.supervision import listening_pid_in_tree

        log.info("waiting for the Dagster webserver on http://127.0.0.1:%d (usually 10 to 30 s)", self.port)
        url = f"http://127.0.0.1:{self.port}/server_info"
        deadline = time.monotonic() + timeout
        dagster = self._dagster()
        while time.monotonic() < deadline:
            self._check_children()
            if listening_pid_in_tree(self.port, dagster.process.pid) and _answers(url):
                return
            time.sleep(0.5)
        raise UsageError(f"the Dagster webserver did not answer on port {self.port} within {timeout:.0f}s; "
                         f"see {dagster.log_path}")

    def _check_children(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise UsageError(f"{child.name} exited with code {child.process.returncode} during start-up; "
                                 f"see {child.log_path}")

    def stop(self) -> None:
        self.guard.stopping = True  # a signal from here on must not interrupt the clean-up
        for child in reversed(self.children):
            if child.process.poll() is None:
                log.info("stopping %s", child.name)
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within 30 s; killing it", child.name)
            # what the child started in its session (code servers, webserver, daemon, runs) goes too
            stop_group(child.process)
        self.children.clear()
        if self.started_redis:
            from streaming.redis_server import stop_embedded_redis

            stop_embedded_redis(self.settings.home)
            log.info("stopped the embedded Redis server")

    def supervise(self) -> int:
        """Block until a signal or until a child dies (the caller stops everything); restart a dead Redis."""
        from streaming.redis_server import RedisServerError, embedded_redis_url, ensure_embedded_redis

        next_redis_check = time.monotonic() + 2.0
        while True:
            for child in self.children:
                if child.process.poll() is not None:
                    log.error("%s exited with code %s; see %s", child.name, child.process.returncode,
                              child.log_path)
                    return 1
            if self.settings.embedded_redis and time.monotonic() >= next_redis_check:
                next_redis_check = time.monotonic() + 2.0
                if embedded_redis_url(self.settings.home) is None:
                    try:
                        with self.guard.deferred():
                            ensure_embedded_redis(self.settings.home, self.settings.redis_server_bin)
                        self.started_redis = True
                        log.warning("the embedded Redis server had stopped; restarted it on its port")
                    except RedisServerError as exc:
                        log.error("the embedded Redis server stopped and cannot be restarted: %s", exc)
            time.sleep(0.5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
