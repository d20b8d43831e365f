"""`livermore alerts` / `candles --follow` and LivermoreClient's iterators survive Redis going away:
they reconnect and resubscribe (one line each time), replay missed alerts from stream:alerts, give
up with one line and exit 1 when Redis stays away, and exit quietly on a closed pipe or Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest

from streaming import keys
from streaming.client import LivermoreClient, RedisUnavailable
from streaming.redis_clients import sync_client
from streaming.redis_server import ensure_embedded_redis, stop_embedded_redis
from tests.helpers.commands import LIVERMORE, clean_env
from tests.servers import wait_for


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    url = ensure_embedded_redis(home)
    yield home, url
    stop_embedded_redis(home)


def _alert(n: int, exchange_id: int = 1) -> str:
    return json.dumps({"id": f"{exchange_id}:BTC-USD:5m:{n}:macdv_oversold", "source_exchange_id": exchange_id,
                       "source_exchange": "coinbase", "symbol": "BTC-USD", "timeframe": "5m", "type": "level",
                       "label": "oversold", "level": -150, "macd_v": -151.0, "signal": -140.0, "histogram": -11.0,
                       "price": 100.0 + n, "timestamp": n * 300_000, "triggered_at": "2026-01-01T00:00:00+00:00"})


def _publish(url: str, payload: str, exchange_id: int = 1, stream: bool = True, channel: bool = True) -> None:
    """What the pipeline's close script does for an alert: XADD to the durable stream and PUBLISH."""
    client = sync_client(url)
    try:
        if stream:
            client.xadd(keys.ALERTS_STREAM, {"json": payload})
        if channel:
            client.publish(keys.alerts_channel(exchange_id), payload)
    finally:
        client.close()


def _subscribers(url: str) -> int:
    client = sync_client(url)
    try:
        return int(client.execute_command("PUBSUB", "NUMPAT")) + sum(
            n for _, n in client.pubsub_numsub(keys.alerts_channel(1)))
    except Exception:
        return 0
    finally:
        client.close()


class Reader:
    """A consumer subprocess whose stdout/stderr lines are collected as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*LIVERMORE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(s, d), daemon=True)
                         for s, d in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def finish(self, timeout: float = 20) -> int:
        code = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


def test_alerts_reconnect_and_replay_what_they_missed(home):
    path, url = home
    reader = Reader(["alerts", "--json"], clean_env({"LIVERMORE_HOME": str(path)}))
    try:
        wait_for(lambda: _subscribers(url) > 0, timeout=20, message="the consumer to subscribe")
        _publish(url, _alert(1))
        wait_for(lambda: len(reader.out) == 1, timeout=10, message="the first alert")
        _publish(url, _alert(2), channel=False)  # published while the consumer will be away: only in the stream
        stop_embedded_redis(path)  # Redis goes away (as when `livermore up` stops)...
        wait_for(lambda: any("lost the connection" in e for e in reader.err), timeout=10, message="the lost line")
        assert ensure_embedded_redis(path) == url  # ...and comes back on its port
        wait_for(lambda: any("reconnected" in e for e in reader.err), timeout=20, message="the reconnected line")
        wait_for(lambda: _subscribers(url) > 0, timeout=10, message="the consumer to subscribe again")
        _publish(url, _alert(3))
        wait_for(lambda: len(reader.out) == 3, timeout=10, message="the replayed and the new alert")
        assert [json.loads(line)["timestamp"] for line in reader.out] == [300_000, 600_000, 900_000]
        assert sum("lost the connection" in e for e in reader.err) == 1
        assert sum("reconnected" in e for e in reader.err) == 1
        assert "1 alert(s) published meanwhile" in next(e for e in reader.err if "reconnected" in e)
        reader.proc.send_signal(signal.SIGINT)
        assert reader.finish() == 130
        assert not any("Traceback" in e for e in reader.err)
    finally:
        reader.stop()


def test_a_consumer_gives_up_with_one_line_when_redis_stays_away(home):
    path, url = home
    reader = Reader(["candles", "--follow", "--reconnect-timeout", "2"], clean_env({"LIVERMORE_HOME": str(path)}))
    try:
        wait_for(lambda: _subscribers(url) > 0 or _numpat(url) > 0, timeout=20, message="the consumer to subscribe")
        started = time.monotonic()
        stop_embedded_redis(path)
        assert reader.finish(timeout=30) == 1
        assert time.monotonic() - started < 15
        assert len(reader.err) == 2 and "lost the connection" in reader.err[0]
        assert "unreachable" in reader.err[1] and "giving up" in reader.err[1]
        assert reader.out == []
    finally:
        reader.stop()


def _numpat(url: str) -> int:
    client = sync_client(url)
    try:
        return int(client.execute_command("PUBSUB", "NUMPAT"))
    except Exception:
        return 0
    finally:
        client.close()


def test_a_closed_pipe_ends_a_consumer_quietly(home):
    path, url = home
    reader = subprocess.Popen([*LIVERMORE, "alerts", "--json"], env=clean_env({"LIVERMORE_HOME": str(path)}),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: _subscribers(url) > 0, timeout=20, message="the consumer to subscribe")
        _publish(url, _alert(1))
        assert reader.stdout.readline()  # `| head -1`: one line, then the reader goes away
        reader.stdout.close()
        for n in range(2, 5):
            _publish(url, _alert(n))
            time.sleep(0.1)
        assert reader.wait(timeout=20) == 141
        assert reader.stderr.read() == b""
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
        reader.stderr.close()


def test_client_iterators_survive_a_restart_and_say_so(home):
    path, url = home
    said: list[str] = []
    client = LivermoreClient(url, reconnect_timeout=30, on_status=said.append)
    got: list[dict] = []
    errors: list[BaseException] = []

    def consume():
        try:
            for alert in client.alerts(exchanges=[1], timeout=15):
                got.append(alert)
                if len(got) == 3:
                    return
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    wait_for(lambda: _subscribers(url) > 0, timeout=20, message="the iterator to subscribe")
    _publish(url, _alert(1))
    _publish(url, _alert(7, exchange_id=2), exchange_id=2)  # another exchange: filtered out
    wait_for(lambda: len(got) == 1, timeout=10, message="the first alert")
    _publish(url, _alert(2), channel=False)
    _publish(url, _alert(8, exchange_id=2), exchange_id=2, channel=False)
    stop_embedded_redis(path)
    wait_for(lambda: said, timeout=10, message="the lost line")
    ensure_embedded_redis(path)
    wait_for(lambda: len(said) == 2, timeout=20, message="the reconnected line")
    wait_for(lambda: _subscribers(url) > 0, timeout=10, message="the iterator to subscribe again")
    _publish(url, _alert(3))
    thread.join(timeout=20)
    client.close()
    assert errors == []
    assert [a["timestamp"] for a in got] == [300_000, 600_000, 900_000]
    assert "lost the connection" in said[0] and "reconnected" in said[1]


def test_client_iterator_raises_redis_unavailable_after_the_timeout(home):
    path, url = home
    client = LivermoreClient(url, reconnect_timeout=1.5)
    stop_embedded_redis(path)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match="giving up"):
        next(iter(client.candle_closes()))
    assert time.monotonic() - started < 10
    client.close()


async def test_async_iterator_reconnects(home):
    path, url = home
    said: list[str] = []
    client = LivermoreClient(url, reconnect_timeout=30, on_status=said.append)
    sub = client.alerts(timeout=20)
    it = sub.__aiter__()
    import asyncio

    first = asyncio.ensure_future(it.__anext__())
    await _until(lambda: _subscribers(url) > 0 or _numpat(url) > 0)
    _publish(url, _alert(1))
    assert (await asyncio.wait_for(first, 10))["timestamp"] == 300_000
    _publish(url, _alert(2), channel=False)
    second = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0.2)
    stop_embedded_redis(path)
    await _until(lambda: bool(said))
    ensure_embedded_redis(path)
    assert (await asyncio.wait_for(second, 20))["timestamp"] == 600_000  # replayed from the stream
    assert "reconnected" in said[-1]
    await it.aclose()
    client.close()


async def _until(condition, timeout: float = 20) -> None:
    import asyncio

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
