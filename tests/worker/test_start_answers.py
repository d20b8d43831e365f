"""`livermore start`, `status` and `workers` as a person runs them against a worker process and the
local simulator: accepted and refused symbols with the exchange's reason, exit 1 when none is
usable, a start with other symbols applied, warm-up progress (plain lines, a progress bar in a
terminal, the status hash), every line within 80 columns and in words."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time

import orjson
import pytest

from streaming import keys
from tests.helpers.commands import LIVERMORE, run_livermore
from tests.helpers.sim import sim_clock_env, sim_config
from tests.servers import wait_for

testing = pytest.importorskip("streaming.sim.testing", reason="the exchange simulator is not there yet")

SYMS = ["SIM1-USD", "SIM2-USD", "SIM3-USD", "SIM4-USD"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture(scope="module")
def sim():
    with testing.running_simulator(sim_config(symbols=4, seed=11, speed=60)) as running:
        yield running


@pytest.fixture
def sim_env(worker_env, sim):
    env = {**worker_env, **sim_clock_env(sim)}
    for name, urls in sim.urls.items():
        env[f"LIVERMORE_{name.upper()}_WS_URL"] = urls.ws_url
        env[f"LIVERMORE_{name.upper()}_REST_URL"] = urls.rest_url
    return env


def said(out: subprocess.CompletedProcess) -> str:
    return " ".join(out.stdout.split())


def fits(text: str) -> None:
    for line in text.splitlines():
        assert len(line) <= 80, f"{len(line)} columns: {line!r}"
    assert "{'" not in text and "['" not in text, text  # no Python reprs


def test_refused_symbols_are_listed_with_the_reason_and_none_usable_exits_1(start_worker, sim_env, redis_client):
    worker = start_worker("--no-warmup", env=sim_env)
    out = run_livermore(["start", "coinbase", "--symbols", "SIM1-USD,NOPE-USD"], sim_env, timeout=90)
    assert out.returncode == 0, (out.stdout, out.stderr, worker.log()[-2000:])
    assert out.stdout.startswith("start coinbase: connected, streaming 1 of 2 symbols"), out.stdout
    assert "accepted: SIM1-USD" in said(out)
    assert "refused: NOPE-USD: coinbase did not accept these product ids" in said(out)
    fits(out.stdout)
    as_json = run_livermore(["start", "coinbase", "--symbols", "SIM1-USD,NOPE-USD", "--json"], sim_env, timeout=60)
    result = orjson.loads(as_json.stdout)["result"]
    assert result["refused"] == {"NOPE-USD": "coinbase did not accept these product ids"}
    assert result["already_running"] is True
    # a start without the refused symbol: it is no longer served, so no longer listed as refused
    other = run_livermore(["start", "coinbase", "--symbols", "SIM1-USD,SIM2-USD", "--json"], sim_env, timeout=60)
    result = orjson.loads(other.stdout)["result"]
    assert result["refused"] == {} and result["accepted"] == ["SIM1-USD", "SIM2-USD"], result

    stopped = run_livermore(["stop", "coinbase"], sim_env, timeout=60)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stop coinbase: stopped", stopped.stdout
    status = redis_client.hgetall(keys.exchange_status(1))
    assert status["connection_state"] == "idle" and status["connected_at"] == "" and status["last_error"] == ""

    none = run_livermore(["start", "coinbase", "--symbols", "NOPE-USD,ALSO-NOPE"], sim_env, timeout=90)
    assert none.returncode == 1, (none.stdout, worker.log()[-2000:])
    assert "error: no usable symbol: coinbase refused ALSO-NOPE (" in said(none) and "NOPE-USD (" in said(none)
    fits(none.stdout)
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "error"
    assert worker.heartbeat()["exchanges"] == {}


def test_a_start_with_other_symbols_applies_the_difference(start_worker, sim, sim_env, redis_client):
    start_worker("--no-warmup", env=sim_env)
    first = run_livermore(["start", "coinbase", "--symbols", "SIM1-USD,SIM2-USD"], sim_env, timeout=90)
    assert first.returncode == 0, first.stdout
    connections = int(sim.stats("coinbase")["connections"])

    same = run_livermore(["start", "coinbase"], sim_env, timeout=60)
    assert same.returncode == 0
    assert "already running (connected), 2 symbols" in said(same)
    assert "pass --symbols to change its symbols" in said(same) and "livermore reload-symbols coinbase" in said(same)

    other = run_livermore(["start", "coinbase", "--symbols", "SIM2-USD,SIM3-USD,SIM4-USD"], sim_env, timeout=60)
    assert other.returncode == 0, other.stdout
    assert "already running (connected); applied the new symbols: +2 -1, now 3 symbols" in said(other)
    fits(other.stdout)
    answer = orjson.loads(run_livermore(["start", "coinbase", "--symbols", "SIM2-USD,SIM3-USD,SIM4-USD", "--json"],
                                        sim_env, timeout=60).stdout)
    assert answer["result"]["symbols"] == 3 and answer["result"]["applied"]["added"] == []
    assert int(sim.stats("coinbase")["connections"]) == connections  # applied on the open connection
    wait_for(lambda: redis_client.exists(keys.candles(1, "SIM4-USD", "5m")), timeout=60,
             message="closes of a symbol added by the second start")


def test_warm_up_progress_in_plain_lines_the_answer_and_the_status(start_worker, sim_env, redis_client):
    worker = start_worker(env=sim_env)
    out = run_livermore(["start", "coinbase", "--symbols", ",".join(SYMS)], sim_env, timeout=120)
    assert out.returncode == 0, (out.stdout, out.stderr, worker.log()[-2000:])
    lines = [line for line in out.stderr.splitlines() if line.startswith("coinbase: warm-up ")]
    assert lines, out.stderr
    assert all(re.fullmatch(r"coinbase: warm-up \d+/20 streams(, [\d,]+ candles)?(, about \S+ left)?", line)
               for line in lines), lines
    assert "\x1b" not in out.stderr + out.stdout  # not a terminal: no bar, no escapes
    assert re.search(r"warm-up: 20 streams, [\d,]+ candles written in [\d.]+s", said(out)), out.stdout
    status = redis_client.hgetall(keys.exchange_status(1))
    assert status["warmup_done"] == status["warmup_total"] == "20"
    assert int(status["warmup_candles"]) > 0 and status["warmup_started_at"]
    result = orjson.loads(run_livermore(["start", "coinbase", "--json"], sim_env, timeout=60).stdout)["result"]
    assert result["warm_up"]["streams_done"] == result["warm_up"]["streams_total"] == 20
    assert result["warm_up"]["candles"] == int(status["warmup_candles"]) and result["warm_up"]["seconds"] > 0


def run_in_terminal(args: list[str], env: dict[str, str], columns: int = 80, timeout: float = 120) -> tuple[int, str]:
    """Run `livermore ARGS` with its stdout on a pseudo-terminal `columns` wide; (exit code, output)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([*LIVERMORE, *args], env={**env, "TERM": "xterm", "COLUMNS": str(columns)},
                            stdout=follower, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(leader)
    return proc.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_a_progress_bar_and_status_fits_it(start_worker, sim_env):
    start_worker(env=sim_env)
    code, output = run_in_terminal(["start", "coinbase", "--symbols", ",".join(SYMS)], sim_env)
    assert code == 0, output
    assert "coinbase warm-up" in output and re.search(r"\d+/20 streams", output), output
    assert "━" in output  # the bar itself
    visible = ANSI.sub("", output)
    assert "start coinbase: connected, streaming 4 of 4 symbols" in visible

    code, shown = run_in_terminal(["status"], sim_env)
    assert code == 0, shown
    for line in ANSI.sub("", shown).splitlines():
        assert len(line) <= 80, line
    code, listed = run_in_terminal(["workers"], sim_env)
    assert code == 0 and "shard all" in listed


def test_status_and_workers_fit_80_columns_in_words_and_agree(start_worker, sim_env, redis_client):
    worker = start_worker("--no-warmup", "--shard", "1/1", env=sim_env)
    plain = start_worker("--no-warmup", env=sim_env)
    for w in (worker, plain):
        out = run_livermore(["start", "coinbase", "--symbols", "SIM1-USD", "--target", w.worker_id], sim_env,
                            timeout=90)
        assert out.returncode == 0, out.stdout
    redis_client.hset(keys.exchange_status(2), mapping={
        "connection_state": "error", "last_error": "binance refuses this country (HTTP 451, unavailable for legal "
        "reasons); use binance_us if you are in the United States, or run Livermore from a country Binance "
        "serves"})
    env = {**sim_env, "COLUMNS": "80"}
    status = run_livermore(["status"], env)
    workers = run_livermore(["workers"], env)
    assert status.returncode == 0 and workers.returncode == 0
    for text in (status.stdout, workers.stdout):
        fits(text)
        assert f"worker {worker.worker_id} (pid {worker.proc.pid}, shard 1/1, user any)" in " ".join(text.split())
        assert f"worker {plain.worker_id} (pid {plain.proc.pid}, shard all, user any)" in " ".join(text.split())
        assert "coinbase connected" in text
    assert "coinbase (Coinbase Advanced Trade): connected since 20" in status.stdout
    assert "last frame" in status.stdout
    assert "binance (Binance): error" in status.stdout
    assert "last error: binance refuses this country (HTTP 451" in " ".join(status.stdout.split())
    assert "binance_us (Binance.US): idle" in status.stdout
    # --json keeps its meaning: the same keys, the raw values
    data = orjson.loads(run_livermore(["status", "--json"], env).stdout)
    assert [e["name"] for e in data["exchanges"]] == ["coinbase", "binance", "binance_us"]
    assert data["exchanges"][0]["connection_state"] == "connected"
    assert {w["worker_id"]: w["shard"] for w in data["workers"]} == {worker.worker_id: "1/1", plain.worker_id: None}
