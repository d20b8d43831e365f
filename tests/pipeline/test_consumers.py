"""Consumers: `livermore alerts` / `livermore candles --follow` subprocesses and the Python client."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import threading

import pytest

from streaming import keys
from streaming.client import LivermoreClient, UnknownExchange
from tests.helpers.commands import LIVERMORE, clean_env, run_livermore
from tests.pipeline.helpers import load_candles, make_pipeline, updates
from tests.pipeline.test_alerts import up_then_down
from tests.servers import wait_for


def cli_env(redis_url: str, tmp_path) -> dict[str, str]:
    """The CLI's environment: this test's Redis and home, none of the developer's LIVERMORE_ settings."""
    return clean_env({"LIVERMORE_REDIS_URL": redis_url, "LIVERMORE_HOME": str(tmp_path / "home")})


def spawn(args: list[str], redis_url: str, tmp_path) -> tuple[subprocess.Popen, queue.Queue]:
    env = {**cli_env(redis_url, tmp_path), "LIVERMORE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    proc = subprocess.Popen([*LIVERMORE, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return proc, lines


def subscribed(client, pattern_or_channel: str) -> bool:
    return client.execute_command("PUBSUB", "NUMPAT") > 0 or \
        client.pubsub_numsub(pattern_or_channel)[0][1] > 0


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()


async def test_cli_alerts_json_and_human(redis_url, redis_client, tmp_path):
    redis_client.hset(keys.EXCHANGES_BY_NAME, mapping={"coinbase": 1, "binance": 2})
    cs = up_then_down()
    pj, lj = spawn(["alerts", "--exchange", "binance", "--json"], redis_url, tmp_path)
    ph, lh = spawn(["alerts"], redis_url, tmp_path)
    try:
        wait_for(lambda: redis_client.pubsub_numsub(keys.alerts_channel(2))[0][1] > 0
                 and redis_client.execute_command("PUBSUB", "NUMPAT") > 0, timeout=20, message="CLI subscribed")
        redis_client.publish(keys.alerts_channel(1), json.dumps({"label": "not-for-binance"}))

        r, p = await make_pipeline(redis_url, ["BTCUSDT"], exchange_id=2, timeframes=("5m",))
        await p.process(updates(cs, "BTCUSDT"))
        await r.aclose()
        stream = [json.loads(f["json"]) for _, f in redis_client.xrange(keys.ALERTS_STREAM)]
        assert stream
        got = [json.loads(lj.get(timeout=10)) for _ in stream]
        assert got == stream
        first_human = lh.get(timeout=10)
        assert "not-for-binance" in first_human  # the all-exchanges follower saw exchange 1 too
        human = lh.get(timeout=10).strip()
        a = stream[0]
        assert human.startswith("20") and f" binance BTCUSDT 5m {a['label']} MACD-V {a['macd_v']:.2f}" in human
        assert lj.empty()
    finally:
        stop(pj)
        stop(ph)


async def test_cli_candles_follow_and_stored(redis_url, redis_client, tmp_path, fixtures_dir):
    redis_client.hset(keys.EXCHANGES_BY_NAME, mapping={"binance": 2})
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:3]
    proc, lines = spawn(["candles", "--follow", "--exchange", "binance", "--timeframe", "5m", "--json"],
                        redis_url, tmp_path)
    try:
        wait_for(lambda: redis_client.execute_command("PUBSUB", "NUMPAT") > 0, timeout=20, message="subscribed")

        r, p = await make_pipeline(redis_url, ["ETHBTC"], exchange_id=2, timeframes=("5m",))
        await p.process(updates(cs, "ETHBTC"))
        await r.aclose()
        got = [json.loads(lines.get(timeout=10)) for _ in cs]
        assert [g["timestamp"] for g in got] == [c.timestamp for c in cs]
        assert got[0]["symbol"] == "ETHBTC" and got[0]["source"] == "websocket"
    finally:
        stop(proc)
    out = run_livermore(["candles", "--exchange", "binance", "--symbol", "ETHBTC", "--timeframe", "5m"],
                        cli_env(redis_url, tmp_path))
    assert out.returncode == 0
    rows = out.stdout.strip().splitlines()
    assert len(rows) == 3 and "binance ETHBTC 5m O" in rows[0] and f"C {cs[-1].close:g}" in rows[-1]


@pytest.mark.parametrize("args, message", [
    (["alerts", "--exchange", "kraken"], "unknown exchange 'kraken'; known exchanges: binance"),
    (["candles", "--follow", "--exchange", "nope"], "unknown exchange 'nope'"),
    (["candles", "--exchange", "binance"], "--symbol S --timeframe TF"),
    (["candles", "--follow", "--timeframe", "7m"], "unknown timeframe '7m'"),
    (["candles", "--follow", "--symbol", "BTC:USD"], "rejected"),
])
def test_cli_bad_arguments_are_one_line_errors(redis_url, redis_client, tmp_path, args, message):
    redis_client.hset(keys.EXCHANGES_BY_NAME, mapping={"binance": 2})
    out = run_livermore(args, cli_env(redis_url, tmp_path))
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


async def test_python_client_sync_and_async(redis_url, redis_client, fixtures_dir):
    redis_client.hset(keys.EXCHANGES_BY_NAME, mapping={"binance": 2})
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:40]
    client = LivermoreClient(redis_url)
    try:
        with pytest.raises(UnknownExchange, match="known exchanges: binance"):
            client.alerts(exchanges=["kraken"])
        sync_got: list[dict] = []
        sub = client.candle_closes(exchanges=["binance"], symbol="ETHBTC", timeframe="5m", timeout=3)
        t = threading.Thread(target=lambda: sync_got.extend(sub))
        t.start()
        wait_for(lambda: redis_client.execute_command("PUBSUB", "NUMPAT") > 0, message="client subscribed")

        got = []

        async def consume():
            async for m in client.candle_closes(exchanges=[2], timeframe="5m", timeout=3):
                got.append(m)
                if len(got) == len(cs):
                    return

        task = asyncio.create_task(consume())
        while redis_client.execute_command("PUBSUB", "NUMPAT") < 2:
            await asyncio.sleep(0.01)
        r, p = await make_pipeline(redis_url, ["ETHBTC"], exchange_id=2, timeframes=("5m",))
        await p.process(updates(cs, "ETHBTC"))
        await r.aclose()
        await asyncio.wait_for(task, 10)
        async_got = got
        t.join(timeout=10)
        assert [m["timestamp"] for m in async_got] == [c.timestamp for c in cs]
        assert [m["timestamp"] for m in sync_got] == [c.timestamp for c in cs]
        ind = client.latest_indicator("binance", "ETHBTC", "5m")
        assert ind["timestamp"] == cs[-1].timestamp and ind["macd_v"] is not None
        assert client.candles(2, "ETHBTC", "5m", limit=5) == cs[-5:]
        assert client.latest_indicator(2, "NOPE", "5m") is None
    finally:
        client.close()
