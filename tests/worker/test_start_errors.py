"""An exchange that cannot be reached is reported as `error` with its cause within seconds, by a real
worker process and `livermore start` / `livermore status` as a person runs them: a closed port
on 127.0.0.1 and a 127.0.0.1 HTTP server answering 451 (as api.binance.com does from the US)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
from aiohttp import web

from streaming import keys
from streaming.redis_server import free_port
from tests.helpers.commands import run_livermore
from tests.helpers.http_server import serve_all

LIMIT_S = 15.0


class Geoblocked:
    """An HTTP server on 127.0.0.1 (its own thread and loop) answering every request with 451,
    WebSocket handshakes included; counts the requests."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response({"code": 0, "msg": "Service unavailable from a restricted location"}, status=451)

    async def _start(self) -> None:
        self._runner, port = await serve_all(self._answer)
        self.url = f"127.0.0.1:{port}"

    def __enter__(self) -> Geoblocked:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def geoblocked() -> Iterator[Geoblocked]:
    with Geoblocked() as server:
        yield server


def urls(env: dict[str, str], exchange: str, host: str) -> dict[str, str]:
    name = exchange.upper()
    return {**env, f"LIVERMORE_{name}_WS_URL": f"ws://{host}", f"LIVERMORE_{name}_REST_URL": f"http://{host}"}


def status_of(redis_client, exchange_id: int) -> dict[str, str]:
    return redis_client.hgetall(keys.exchange_status(exchange_id))


@pytest.mark.parametrize(("exchange", "exchange_id", "symbol", "warmup", "where", "words"), [
    pytest.param("coinbase", 1, "BTC-USD", True, "closed", ["connection refused by 127.0.0.1",
                                                             "LIVERMORE_COINBASE_REST_URL"], id="refused-rest"),
    pytest.param("coinbase", 1, "BTC-USD", False, "closed", ["connection refused by 127.0.0.1",
                                                              "ConnectionRefused", "LIVERMORE_COINBASE_WS_URL",
                                                              "3 attempts"], id="refused-ws"),
    pytest.param("binance", 2, "BTCUSDT", True, "451", ["binance refuses this country (HTTP 451",
                                                         "use binance_us"], id="451-rest"),
    pytest.param("binance", 2, "BTCUSDT", False, "451", ["binance refuses this country (HTTP 451",
                                                          "use binance_us"], id="451-ws"),
])
def test_unreachable_exchange_reported_as_error_with_its_cause_within_15s(
        start_worker, worker_env, redis_client, geoblocked, exchange, exchange_id, symbol, warmup, where, words):
    host = f"127.0.0.1:{free_port()}" if where == "closed" else geoblocked.url
    env = urls(worker_env, exchange, host)
    worker = start_worker(*([] if warmup else ["--no-warmup"]), env=env)
    redis_client.delete(keys.LIFECYCLE_STREAM)

    began = time.monotonic()
    out = run_livermore(["start", exchange, "--symbols", symbol, "--timeout", "60"], env, timeout=90)
    took = time.monotonic() - began
    assert out.returncode == 1, (out.stdout, out.stderr, worker.log()[-3000:])
    assert took < LIMIT_S, f"the error took {took:.1f}s:\n{out.stdout}\n{worker.log()[-3000:]}"
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"start {exchange}: error: connect failed"), out.stdout
    said = " ".join(out.stdout.split())  # wrapped at 80 columns
    for text in words:
        assert text in said, (text, out.stdout)
    assert all(len(line) <= 80 for line in out.stdout.splitlines())
    if where == "451" and warmup:
        # retrying cannot fix it: each request in flight when the first answer came asked once,
        # none after (the warm-up runs 4 at a time over 5 streams)
        assert 1 <= geoblocked.requests <= 4

    status = status_of(redis_client, exchange_id)
    assert status["connection_state"] == "error", status
    assert words[0] in status["last_error"] and "reconnecting in" not in status["last_error"]
    assert status["connected_at"] == ""
    events = [orjson.loads(f["json"]) for _, f in redis_client.xrange(keys.LIFECYCLE_STREAM)]
    assert events[-1]["event"] == "exchange:disconnected" and events[-1]["state"] == "error"
    assert all(e["symbols"] == 1 for e in events), events

    shown = run_livermore(["status"], env)
    assert shown.returncode == 0, shown.stderr
    said = " ".join(shown.stdout.split())
    assert f"{exchange} (" in said and ": error" in said and words[0] in said, shown.stdout
    assert all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout

    assert worker.terminate() == 0  # the error stays the last word: no "reconnecting" after a shutdown
    after = status_of(redis_client, exchange_id)
    assert after["connection_state"] == "error" and "reconnecting in" not in after["last_error"]


def test_no_worker_start_fails_at_once_and_queues_nothing(worker_env, redis_client):
    redis_client.delete(keys.COMMANDS_STREAM)
    began = time.monotonic()
    out = run_livermore(["start", "coinbase"], worker_env, timeout=60)  # the default timeout is 30 s
    assert out.returncode == 1 and time.monotonic() - began < 10
    assert "no worker is running" in out.stdout and "livermore worker" in out.stdout and "--spawn" in out.stdout
    assert redis_client.xlen(keys.COMMANDS_STREAM) == 0  # nothing a worker started later would run
    queued = run_livermore(["start", "coinbase", "--no-wait"], worker_env, timeout=60)
    assert queued.returncode == 0 and "stays queued" in queued.stderr
    assert redis_client.xlen(keys.COMMANDS_STREAM) == 1


def test_a_known_exchange_has_an_idle_status_as_soon_as_a_worker_starts(start_worker, redis_client):
    for exchange_id in (1, 2, 3):
        redis_client.delete(keys.exchange_status(exchange_id))
    start_worker()
    for exchange_id in (1, 2, 3):
        assert status_of(redis_client, exchange_id)["connection_state"] == "idle"


def test_stop_without_a_worker_says_nothing_streams(worker_env):
    out = run_livermore(["stop", "coinbase"], worker_env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "stop coinbase: no worker is running, so nothing streams"


def test_status_of_an_exchange_whose_worker_was_killed_is_not_connected(start_worker, worker_env, redis_client):
    import signal

    worker = start_worker()
    redis_client.hset(keys.exchange_status(1), mapping={
        "connection_state": "connected", "connected_at": "2026-11-24T10:00:00+00:00",
        "worker_states": orjson.dumps({worker.worker_id: "connected"}).decode()})
    shown = run_livermore(["status", "--json"], worker_env)
    assert json_row(shown, "coinbase")["connection_state"] == "connected"  # its worker lives
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    redis_client.hdel(keys.WORKERS, worker.worker_id)  # as readers do once its heartbeat is stale
    row = json_row(run_livermore(["status", "--json"], worker_env), "coinbase")
    assert row["connection_state"] == "disconnected" and "no live worker serves it" in row["last_error"]
    assert "coinbase (Coinbase Advanced Trade): disconnected" in run_livermore(["status"], worker_env).stdout


def json_row(out, name: str) -> dict:
    assert out.returncode == 0, out.stderr
    return next(r for r in orjson.loads(out.stdout)["exchanges"] if r["name"] == name)
