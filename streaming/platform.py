"""`livermore up` / `livermore down`: the whole platform on one machine.

up: embedded Redis (unless LIVERMORE_REDIS_URL), database migrated and seeded, Dagster
webserver + daemon (`dagster dev`) on 127.0.0.1, the streaming worker idle, and with
--offline the local exchange simulator with every exchange pointed at it. Ctrl-C (or SIGTERM)
stops everything it started, in reverse order.
"""

from __future__ import annotations

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

from streaming.errors import UsageError
from streaming.settings import Settings, mask_url, resolve_redis_url

log = logging.getLogger("livermore.up")

REPO_ROOT = Path(__file__).resolve().parents[1]
EXCHANGE_NAMES = ("coinbase", "binance", "binance_us")
DEFAULT_DAGSTER_YAML = "telemetry:\n  enabled: false\n"


def dagster_yaml(env: dict[str, str]) -> str:
    """The instance config: the repository's dagster.yaml, plus PostgreSQL storage when asked."""
    base = REPO_ROOT / "dagster.yaml"
    text = base.read_text() if base.exists() else DEFAULT_DAGSTER_YAML
    if env.get("LIVERMORE_DAGSTER_DATABASE_URL"):
        text += "storage:\n  postgres:\n    postgres_url:\n      env: LIVERMORE_DAGSTER_DATABASE_URL\n"
    return text


WORKSPACE_YAML = """load_from:
  - python_module:
      module_name: livermore_pipelines.definitions
      attribute: defs
"""


def prepare_dagster_home(settings: Settings, env: dict[str, str]) -> Path:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(dagster_yaml(env))
    (home / "workspace.yaml").write_text(WORKSPACE_YAML)
    return home


def _livermore_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from streaming.cli import main; raise SystemExit(main())", *args]


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class Platform:
    settings: Settings
    port: int = 3000
    offline: bool = False
    with_worker: bool = True
    sim_args: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    started_redis: bool = False
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def _spawn(self, name: str, cmd: list[str]) -> Child:
        logs = self.settings.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        fh = open(log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        fh.close()
        child = Child(name, proc, log_path)
        self.children.append(child)
        log.info("started %s (pid %d, log %s)", name, proc.pid, log_path)
        return child

    def start_simulator(self, timeout: float = 30.0) -> dict[str, dict[str, str]]:
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
        urls = json.loads(urls_file.read_text())
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
        redis_url = resolve_redis_url(self.settings)
        log.info("redis: %s%s", mask_url(redis_url), " (embedded)" if self.settings.embedded_redis else "")
        inserted = upgrade(self.settings.database_url)
        log.info("database: %s migrated (%d exchange rows seeded)", mask_url(self.settings.database_url), inserted)
        dagster_home = prepare_dagster_home(self.settings, self.env)
        self.env.update({
            "DAGSTER_HOME": str(dagster_home),
            "LIVERMORE_HOME": str(self.settings.home),
            "LIVERMORE_DATABASE_URL": self.settings.database_url,
        })
        if self.offline:
            self.env["LIVERMORE_OFFLINE"] = "1"
        if not shutil.which("env"):
            raise UsageError("the `env` program is missing; it is part of coreutils")
        dagster = str(Path(sys.executable).with_name("dagster"))
        if not Path(dagster).exists():
            dagster = shutil.which("dagster") or "dagster"
        # `env --default-signal` undoes an inherited SIG_IGN so dagster dev stops on SIGTERM
        self._spawn("dagster", ["env", "--default-signal=INT,TERM", dagster, "dev", "-h", "127.0.0.1",
                                "-p", str(self.port), "-w", str(dagster_home / "workspace.yaml")])
        if self.with_worker:
            self._spawn("worker", _livermore_cmd("worker"))

    def wait_ready(self, timeout: float = 180.0) -> None:
        url = f"http://127.0.0.1:{self.port}/server_info"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.children:
                if child.process.poll() is not None:
                    raise UsageError(f"{child.name} exited with code {child.process.returncode}; see {child.log_path}")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise UsageError(f"Dagster did not answer on {url} within {timeout:.0f}s; see {self.settings.home}/logs")

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                log.info("stopping %s", child.name)
                child.process.send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within 30 s; killing it", child.name)
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        self.children.clear()
        if self.started_redis:
            from streaming.redis_server import stop_embedded_redis

            stop_embedded_redis(self.settings.home)
            log.info("stopped the embedded Redis server")

    def supervise(self) -> int:
        """Block until a signal or until a child dies; then stop everything."""
        stop = {"flag": False}

        def _handler(signum, _frame):
            stop["flag"] = True

        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)
        code = 0
        try:
            while not stop["flag"]:
                for child in self.children:
                    if child.process.poll() is not None:
                        log.error("%s exited with code %s; see %s", child.name, child.process.returncode,
                                  child.log_path)
                        stop["flag"] = True
                        code = 1
                time.sleep(0.5)
        finally:
            self.stop()
        return code
