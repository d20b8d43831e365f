"""`livermore up` tells the truth and leaves nothing behind: one `up` per home, a busy port refused
before anything starts, "up" only when its own webserver answers, a signal at any moment stops
everything it started, and dagster.log opens without warnings the project cannot act on."""

from __future__ import annotations

import http.server
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming.redis_server import free_port
from tests.helpers.commands import LIVERMORE, clean_env, run_livermore
from tests.helpers.sim import TEST_START_MS
from tests.servers import wait_for

pytestmark = pytest.mark.slow


def _env(home: Path) -> dict[str, str]:
    return clean_env({"LIVERMORE_HOME": str(home)}, drop=("LIVERMORE_", "DAGSTER_"))


def _ours(home: Path) -> list[psutil.Process]:
    """Every process running for this home: by its environment, its command line or its directory."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "environ", "cwd"]):
        try:
            env = proc.info["environ"] or {}
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            mine = str(home) in env.get("LIVERMORE_HOME", "") or str(home) in env.get("DAGSTER_HOME", "") \
                or str(home) in text
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


class Up:
    def __init__(self, home: Path, *args: str) -> None:
        self.port = free_port()
        self.log = home.parent / f"up-{self.port}.out"
        self._fh = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*LIVERMORE, "up", "--port", str(self.port), *args], env=_env(home),
                                     stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._fh.close()


def _scrape(url: str) -> set[str] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return {f.name for f in text_string_to_metric_families(resp.read().decode())}
    except OSError:
        return None


def test_a_busy_port_is_refused_before_anything_starts(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        res = run_livermore(["up", "--port", str(port)], _env(home), timeout=30)
        assert time.monotonic() - started < 5
    assert res.returncode == 2
    assert f"port {port} is in use by another program; pass --port " in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (home / "logs").exists() and not (home / "redis").exists()


def test_a_busy_metrics_port_is_refused_before_anything_starts(tmp_path):
    home = tmp_path / "home"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        started = time.monotonic()
        res = run_livermore(["up", "--port", str(free_port()), "--metrics-port", str(taken)], _env(home), timeout=30)
        assert time.monotonic() - started < 5
    assert res.returncode == 2
    assert f"port {taken} (the worker's /metrics) is in use by another program; pass --metrics-port " in res.stderr
    assert not (home / "logs").exists() and not (home / "redis").exists()


def test_up_is_truthful_alone_on_its_home_and_stops_everything(tmp_path):
    home = tmp_path / "home"
    offline_home = home / "offline"
    first = Up(home, "--offline", "--sim-speed", "60", "--sim-symbols", "2", "--sim-start", str(TEST_START_MS))
    try:
        wait_for(lambda: "Livermore is up" in first.output() or first.proc.poll() is not None, timeout=180,
                 interval=0.5, message="livermore up")
        out = first.output()
        assert "Livermore is up" in out, out
        assert out.splitlines()[0].startswith(f"livermore up --offline: home {offline_home}")
        # the worker serves Prometheus metrics where `up` says (9464, or a free port when that is taken)
        metrics_url = re.search(r"worker metrics at (http://127\.0\.0\.1:\d+/metrics)", out)
        assert metrics_url, out
        families = wait_for(lambda: _scrape(metrics_url.group(1)), timeout=60, interval=0.5,
                            message="the worker's /metrics")
        assert {"livermore_streams", "livermore_frames_received", "livermore_close_lag_seconds"} <= families
        # a second `up` on the same home: refused at once, naming the first
        started = time.monotonic()
        second = run_livermore(["--offline", "up", "--port", str(free_port())], _env(home), timeout=30)
        assert time.monotonic() - started < 5
        assert second.returncode == 2
        assert f"pid {first.proc.pid}, port {first.port}, since " in second.stderr
        status = run_livermore(["--offline", "status", "--json"], _env(home))
        assert status.returncode == 0 and f'"home": "{offline_home}"' in status.stdout
        dagster_log = (offline_home / "logs" / "dagster.log").read_text()
        for noise in ("SupersessionWarning", "dg dev' instead", "will not be used to configure Dagster",
                      "BetaWarning"):
            assert noise not in dagster_log, f"dagster.log says {noise!r}:\n{dagster_log[:2000]}"
        running = _ours(home)
        assert {"redis-server", "dagster", "worker", "exchange-sim"} <= {
            word for p in running for word in ("redis-server", "dagster", "worker", "exchange-sim")
            if word in " ".join(p.cmdline())}
    finally:
        code = first.stop(signal.SIGTERM)
    assert code == 0
    left = _ours(home)
    assert left == [], [" ".join(p.cmdline())[:200] for p in left]


def test_a_signal_during_start_up_leaves_nothing_behind(tmp_path):
    home = tmp_path / "home"
    up = Up(home, "--offline", "--sim-symbols", "2", "--sim-start", str(TEST_START_MS))
    try:
        def dagster_is_starting():
            try:  # a child may exit between listing it and reading it: not yet, look again
                kids = psutil.Process(up.proc.pid).children()
                dagster = [k for k in kids if "dg" in " ".join(k.cmdline())]
                return bool(dagster) and bool(dagster[0].children())
            except psutil.Error:
                return False

        wait_for(dagster_is_starting, timeout=60, interval=0.05, message="Dagster's own processes")
        assert "Livermore is up" not in up.output()
        assert len(_ours(home)) >= 4  # simulator, redis, dagster and what it started, worker
    finally:
        code = up.stop(signal.SIGTERM)
    assert code == 0
    left = _ours(home)
    assert left == [], [" ".join(p.cmdline())[:200] for p in left]
    assert "stopped by SIGTERM" in up.output()


class _Answering(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"dagster_webserver_version": "someone else"}')

    def log_message(self, *args):
        pass


def test_an_answer_from_another_program_on_the_port_is_not_up(tmp_path):
    """`up` waits for its OWN webserver: an answer on the URL from another process is not enough."""
    from streaming.errors import UsageError
    from streaming.platform import Child, Platform
    from streaming.settings import load_settings

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ours = subprocess.Popen(["sleep", "60"], start_new_session=True)  # "our dagster", which never binds
    try:
        platform = Platform(load_settings({"LIVERMORE_HOME": str(tmp_path / "home")}), port=server.server_port)
        platform.children.append(Child("dagster", ours, tmp_path / "dagster.log"))
        with pytest.raises(UsageError, match="did not answer"):
            platform.wait_ready(timeout=3)
    finally:
        server.shutdown()
        server.server_close()
        ours.kill()
        ours.wait()
