"""Binance protocol conformance and fault injection against the running simulator."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from streaming.sim import FaultError
from streaming.sim.testing import running_simulator
from tests.helpers.sim import sim_config
from tests.sim.clients import connect, http_get, recv_json, recv_until, run


def test_combined_stream_klines_close_with_x_true_equal_to_truth(sim):
    async def go():
        url = sim.urls["binance"].ws_url + "/stream?streams=sim1usdt@kline_5m/sim1usdt@kline_15m"
        async with connect(url) as ws:
            frames = await recv_until(ws, lambda f: f["stream"] == "sim1usdt@kline_15m" and f["data"]["k"]["x"])
            first = frames[0]
            assert list(first) == ["stream", "data"]
            k = first["data"]["k"]
            assert list(k) == ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
            assert isinstance(k["t"], int) and isinstance(k["o"], str) and k["T"] == k["t"] + 300_000 - 1
            closed = [f["data"]["k"] for f in frames if f["stream"] == "sim1usdt@kline_5m" and f["data"]["k"]["x"]]
            assert closed
            truth = {c.timestamp: c for c in sim.truth("binance", "SIM1USDT", "5m")}
            for k in closed:
                c = truth[k["t"]]
                assert (float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]), float(k["v"])) == (
                    c.open, c.high, c.low, c.close, c.volume)
            k15 = frames[-1]["data"]["k"]
            c15 = {c.timestamp: c for c in sim.truth("binance", "SIM1USDT", "15m")}[k15["t"]]
            assert float(k15["h"]) == c15.high and float(k15["v"]) == c15.volume
    run(go())


def test_raw_stream_live_subscribe_errors_and_list(sim):
    async def go():
        async with connect(sim.urls["binance_us"].ws_url + "/ws/sim2usd@kline_1h") as ws:
            frame = await recv_json(ws)
            assert frame["e"] == "kline" and frame["s"] == "SIM2USD" and frame["k"]["i"] == "1h"
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["sim1usd@kline_4h", "sim1usd@kline_1d"],
                                      "id": 7}))
            got = await recv_until(ws, lambda f: f.get("id") == 7)
            assert got[-1] == {"result": None, "id": 7}
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["nopeusd@kline_5m"], "id": 8}))
            err = (await recv_until(ws, lambda f: f.get("id") == 8))[-1]
            assert err["error"]["code"] == 2 and err["error"]["msg"].startswith("Invalid request")
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["sim1usd@kline_7m"], "id": 9}))
            assert (await recv_until(ws, lambda f: f.get("id") == 9))[-1]["error"]["code"] == 2
            await ws.send("nonsense")
            assert (await recv_until(ws, lambda f: "error" in f))[-1]["error"]["code"] == 3
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10}))
            listed = (await recv_until(ws, lambda f: f.get("id") == 10))[-1]["result"]
            assert set(listed) == {"sim2usd@kline_1h", "sim1usd@kline_4h", "sim1usd@kline_1d"}
            await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["sim2usd@kline_1h"], "id": 11}))
            await recv_until(ws, lambda f: f.get("id") == 11)
            frames = await recv_until(ws, lambda f: f.get("data", f).get("e") == "kline" and f["k"]["i"] == "1d")
            assert frames
            too_many = [f"sim1usd@kline_{i}" for i in ("5m", "15m")] + [f"x{i}usd@kline_5m" for i in range(1030)]
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": too_many, "id": 12}))
            assert "error" in (await recv_until(ws, lambda f: f.get("id") == 12))[-1]
    run(go())


def test_server_pings_and_shutdown_event(recordings_dir):
    cfg = sim_config(symbols=1, speed=100.0, ping_min_interval=0.05, shutdown_grace=0.2, recordings=None)
    with running_simulator(cfg) as s:
        async def go():
            async with connect(s.urls["binance"].ws_url + "/ws/sim1usdt@kline_5m") as ws:
                await recv_json(ws)
                await asyncio.sleep(0.5)  # ping every 20 simulated s = 0.2 s; the client answers them
                hub = s.sim.hubs["binance"]
                conn = next(iter(hub.connections))
                assert conn.pings >= 1 and conn.pongs >= 1
                await asyncio.to_thread(s.inject, "server_shutdown", exchange="binance")
                frames = await recv_until(ws, lambda f: f.get("e") == "serverShutdown")
                assert isinstance(frames[-1]["E"], int)
                with pytest.raises(websockets.ConnectionClosed):
                    for _ in range(1000):
                        await recv_json(ws)
        run(go())
        assert s.fault_log()[-1]["kind"] == "server_shutdown"


def test_rest_klines_rows_limits_and_truth(sim):
    base = sim.urls["binance"].rest_url
    truth = sim.truth("binance", "SIM2USDT", "1h")
    start = truth[-400].timestamp
    status, headers, rows = http_get(f"{base}/api/v3/klines?symbol=SIM2USDT&interval=1h&startTime={start}&limit=300")
    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) >= 2
    assert len(rows) == 300 and rows[0][0] == start
    row = rows[0]
    assert isinstance(row[0], int) and all(isinstance(x, str) for x in row[1:6]) and row[6] == start + 3_600_000 - 1
    assert isinstance(row[8], int) and row[11] == "0"
    by_t = {c.timestamp: c for c in truth}
    for r in rows:
        c = by_t[r[0]]
        assert (float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])) == (c.open, c.high, c.low,
                                                                                       c.close, c.volume)
    status, _, rows = http_get(f"{base}/api/v3/klines?symbol=SIM2USDT&interval=1d&limit=1000")
    assert status == 200 and len(rows) >= 301 and rows == sorted(rows)
    assert http_get(f"{base}/api/v3/klines?symbol=NOPE&interval=1h")[2] == {"code": -1121, "msg": "Invalid symbol."}
    assert http_get(f"{base}/api/v3/klines?symbol=SIM2USDT&interval=1h&limit=1001")[0] == 400
    assert http_get(f"{base}/api/v3/klines?symbol=SIM2USDT&interval=9x")[2]["code"] == -1120


def test_exchange_info_and_ticker(sim):
    base = sim.urls["binance"].rest_url
    status, _, info = http_get(f"{base}/api/v3/exchangeInfo")
    assert status == 200
    names = {s["symbol"] for s in info["symbols"]}
    assert {"SIM1USDT", "ETHBTC"} <= names and len(names) >= 1695
    sim1 = next(s for s in info["symbols"] if s["symbol"] == "SIM1USDT")
    assert (sim1["status"], sim1["baseAsset"], sim1["quoteAsset"]) == ("TRADING", "SIM1", "USDT")
    status, _headers, tickers = http_get(f"{base}/api/v3/ticker/24hr")
    assert status == 200 and isinstance(tickers, list) and len(tickers) == len(names)
    t = next(x for x in tickers if x["symbol"] == "SIM1USDT")
    assert all(isinstance(t[k], str) for k in ("quoteVolume", "volume", "lastPrice")) and float(t["volume"]) > 0
    assert http_get(f"{base}/api/v3/ticker/24hr?symbol=NOPE")[2]["code"] == -1121


def _signed(secret: str, query: str) -> str:
    return query + "&signature=" + hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def test_account_hmac_signature(sim):
    key, secret = sim.credentials("binance")
    url = sim.urls["binance"].rest_url + "/api/v3/account?"
    q = f"recvWindow=5000&timestamp={int(time.time() * 1000)}"
    status, _, body = http_get(url + _signed(secret, q), {"X-MBX-APIKEY": key})
    assert status == 200
    assert {"asset": "SIM1", "free": "2.50000000", "locked": "0.50000000"} in body["balances"]
    assert http_get(url + _signed("wrong", q), {"X-MBX-APIKEY": key})[2] == {
        "code": -1022, "msg": "Signature for this request is not valid."}
    assert http_get(url + _signed(secret, q), {"X-MBX-APIKEY": "nope"})[0] == 401
    assert http_get(url + _signed(secret, q))[0] == 401
    old = f"recvWindow=5000&timestamp={int(time.time() * 1000) - 60_000}"
    assert http_get(url + _signed(secret, old), {"X-MBX-APIKEY": key})[2]["code"] == -1021
    assert http_get(url + "timestamp=1", {"X-MBX-APIKEY": key})[2]["code"] == -1102


def test_weight_budget_429_then_418(recordings_dir):
    # the weight minute is real time: a fixed clock keeps every request in one minute
    cfg = sim_config(symbols=1, binance_weight_per_minute=100, binance_ban_after=1, recordings=None,
                     wall_clock=lambda: 1_800_000_030.0)
    with running_simulator(cfg) as s:
        url = s.urls["binance"].rest_url + "/api/v3/exchangeInfo"
        statuses = []
        for _ in range(8):
            status, headers, _body = http_get(url)
            statuses.append(status)
            assert "X-MBX-USED-WEIGHT-1M" in headers
            if status in (429, 418):
                assert int(headers["Retry-After"]) > 0
        assert 429 in statuses and statuses[-1] == 418


def test_injected_rate_limit_and_bad_fault_requests(sim):
    sim.inject("rate_limit", exchange="binance_us", count=2, retry_after=7)
    url = sim.urls["binance_us"].rest_url + "/api/v3/ping"
    first, second, third = http_get(url), http_get(url), http_get(url)
    assert first[0] == second[0] == 429 and first[1]["Retry-After"] == "7"
    assert third[0] == 200
    with pytest.raises(FaultError):
        sim.inject("sequence_gap", exchange="binance")
    with pytest.raises(FaultError):
        sim.inject("drop", exchange="kraken")
    req = urllib.request.Request(sim.urls["binance"].rest_url + "/_sim/fault", method="POST",
                                 data=json.dumps({"kind": "bogus"}).encode())
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 400 and "unknown fault" in json.loads(exc.value.read())["error"]


def test_replay_binance_recording_to_raw_and_combined(recordings_dir):
    with running_simulator(sim_config(symbols=1, synthetic_live=False, recordings=recordings_dir)) as s:
        async def go():
            base = s.urls["binance"].ws_url
            async with connect(base + "/stream?streams=omgbusd@kline_1m") as comb, \
                    connect(base + "/ws/omgbusd@kline_1m") as raw:
                await asyncio.sleep(0.2)
                recording = recordings_dir / "binance/ws_kline_1m_combined_stream_2021-10-12.txt"
                n = await asyncio.to_thread(s.replay, recording, "binance")
                assert n == 10  # 5 OMGBUSD frames, to each of the two connections
                c = [await recv_json(comb) for _ in range(5)]
                r = [await recv_json(raw) for _ in range(5)]
                assert [f["data"] for f in c] == r
                assert [f["k"]["x"] for f in r] == [False, False, False, True, False]
        run(go())
