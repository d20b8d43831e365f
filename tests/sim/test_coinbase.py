"""Coinbase protocol conformance against the running simulator, with plain clients."""

from __future__ import annotations

import itertools
import json
import secrets
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.helpers.sim import sim_config
from tests.sim.clients import connect, http_get, recv_json, recv_until, run

SUB = {"type": "subscribe", "channel": "candles"}


def test_subscribe_snapshot_ack_updates_and_one_sequence(sim):
    async def go():
        async with connect(sim.urls["coinbase"].ws_url) as ws:
            await ws.send(json.dumps({**SUB, "product_ids": ["SIM1-USD", "NOPE-USD"]}))
            snap = await recv_json(ws)
            assert snap["channel"] == "candles" and list(snap) == ["channel", "timestamp", "sequence_num", "events"]
            event = snap["events"][0]
            assert event["type"] == "snapshot"
            candles = event["candles"]
            assert len(candles) == 100
            starts = [int(c["start"]) for c in candles]
            assert starts == sorted(starts)
            assert any(b - a > 300 for a, b in itertools.pairwise(starts))  # gaps, like the real one
            assert all(isinstance(v, str) for c in candles for v in c.values())
            assert list(candles[0]) == ["start", "high", "low", "open", "close", "volume", "product_id"]
            ack = await recv_json(ws)
            # the unknown product is silently left out
            assert ack["channel"] == "subscriptions"
            assert ack["events"][0]["subscriptions"] == {"candles": ["SIM1-USD"]}
            await ws.send(json.dumps({"type": "subscribe", "channel": "heartbeats", "product_ids": []}))
            frames = await recv_until(ws, lambda f: f["channel"] == "candles"
                                      and int(f["events"][0]["candles"][0]["start"]) > starts[-1] + 600)
            seqs = [snap["sequence_num"], ack["sequence_num"]] + [f["sequence_num"] for f in frames]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # one counter across channels
            hb = [f["events"][0]["heartbeat_counter"] for f in frames if f["channel"] == "heartbeats"]
            assert len(hb) >= 2 and hb == list(range(hb[0], hb[0] + len(hb)))
            updates = [f["events"][0] for f in frames if f["channel"] == "candles"]
            assert all(u["type"] == "update" and len(u["candles"]) == 1 for u in updates)
            assert frames[-1]["timestamp"].endswith("Z") and "T" in frames[-1]["timestamp"]
    run(go())


def test_updates_end_each_bucket_with_the_true_candle(sim):
    async def go():
        async with connect(sim.urls["coinbase"].ws_url) as ws:
            await ws.send(json.dumps({**SUB, "product_ids": ["SIM2-USD"]}))
            snap = await recv_json(ws)
            last_start = int(snap["events"][0]["candles"][-1]["start"])
            book = {}
            await recv_json(ws)  # ack
            frames = await recv_until(ws, lambda f: f["channel"] == "candles"
                                      and int(f["events"][0]["candles"][0]["start"]) >= last_start + 1800)
            for f in frames:
                c = f["events"][0]["candles"][0]
                book[int(c["start"]) * 1000] = c  # an update for a seen start replaces it
            truth = {c.timestamp: c for c in sim.truth("coinbase", "SIM2-USD", "5m")}
            closed = [t for t in sorted(book) if t < max(book)]
            assert len(closed) >= 4
            for t in closed:
                c, tr = book[t], truth[t]
                assert (float(c["open"]), float(c["high"]), float(c["low"]), float(c["close"]),
                        float(c["volume"])) == (tr.open, tr.high, tr.low, tr.close, tr.volume)
    run(go())


def test_unknown_channel_and_bad_messages_get_errors_not_crashes(sim):
    async def go():
        async with connect(sim.urls["coinbase"].ws_url) as ws:
            await ws.send("{not json")
            assert (await recv_json(ws))["type"] == "error"
            await ws.send(json.dumps({"type": "subscribe", "channel": "level9", "product_ids": ["SIM1-USD"]}))
            assert "level9" in (await recv_json(ws))["message"]
            await ws.send(json.dumps({**SUB, "product_ids": "SIM1-USD"}))
            assert (await recv_json(ws))["type"] == "error"
            await ws.send(json.dumps({**SUB, "product_ids": ["SIM3-USD"]}))
            assert (await recv_json(ws))["events"][0]["type"] == "snapshot"
    run(go())


def test_unsubscribed_connection_is_closed_after_the_timeout(recordings_dir):
    import websockets

    from streaming.sim.testing import running_simulator

    with running_simulator(sim_config(symbols=1, subscribe_timeout=0.3, recordings=None)) as s:
        async def go():
            async with connect(s.urls["coinbase"].ws_url) as ws:
                with pytest.raises(websockets.ConnectionClosed):
                    for _ in range(10):
                        await recv_json(ws, timeout=10)
        run(go())


def test_rest_candles_newest_first_strings_limit_and_truth(sim):
    now_s = sim.now_ms() // 1000
    base = sim.urls["coinbase"].rest_url + "/api/v3/brokerage/market/products/SIM1-USD/candles"
    status, _, body = http_get(f"{base}?granularity=ONE_HOUR&start={now_s - 299 * 3600}&end={now_s}")
    assert status == 200
    rows = body["candles"]
    starts = [int(r["start"]) for r in rows]
    assert starts == sorted(starts, reverse=True)
    assert all(isinstance(v, str) for r in rows for v in r.values()) and "product_id" not in rows[0]
    truth = {c.timestamp: c for c in sim.truth("coinbase", "SIM1-USD", "1h")}
    closed = [r for r in rows if int(r["start"]) * 1000 in truth]
    assert len(closed) >= len(rows) - 1 >= 250
    for r in closed:
        tr = truth[int(r["start"]) * 1000]
        assert (float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]), float(r["volume"])) == (
            tr.open, tr.high, tr.low, tr.close, tr.volume)
    status, _, body = http_get(f"{base}?granularity=ONE_HOUR&start={now_s - 400 * 3600}&end={now_s}")
    assert status == 400 and body["error"] == "INVALID_ARGUMENT" and "300" in body["message"]
    status, _, body = http_get(f"{base}?granularity=WEEKLY&start=0&end=1")
    assert status == 400 and set(body) == {"error", "message", "error_details"}
    nope = "/api/v3/brokerage/market/products/NOPE-USD/candles"
    status, _, body = http_get(f"{sim.urls['coinbase'].rest_url}{nope}?granularity=ONE_DAY&start=0&end={now_s}")
    assert status in (400, 404)


@pytest.mark.parametrize("gran,tf", [("FIVE_MINUTE", "5m"), ("FIFTEEN_MINUTE", "15m"), ("FOUR_HOUR", "4h"),
                                     ("ONE_DAY", "1d")])
def test_rest_backfill_over_pages_equals_truth(sim, gran, tf):
    from streaming.timeframes import timeframe_ms

    step = timeframe_ms(tf) // 1000
    truth = sim.truth("coinbase", "SIM3-USD", tf)[-600:]
    got = {}
    start = truth[0].timestamp // 1000
    end = truth[-1].timestamp // 1000
    base = sim.urls["coinbase"].rest_url + "/api/v3/brokerage/market/products/SIM3-USD/candles"
    while start <= end:
        page_end = min(end, start + 299 * step)
        status, _, body = http_get(f"{base}?granularity={gran}&start={start}&end={page_end}")
        assert status == 200
        for r in body["candles"]:
            got[int(r["start"]) * 1000] = (float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"]),
                                           float(r["volume"]))
        start = page_end + step
    assert got == {c.timestamp: (c.open, c.high, c.low, c.close, c.volume) for c in truth}


def test_products_recorded_plus_synthetic(sim):
    status, _, body = http_get(sim.urls["coinbase"].rest_url + "/api/v3/brokerage/market/products")
    assert status == 200
    ids = [p["product_id"] for p in body["products"]]
    assert {"SIM1-USD", "SIM2-USD", "SIM3-USD", "BTC-USD", "BTC-USDC"} <= set(ids)
    assert body["num_products"] == len(ids) >= 923
    sim1 = body["products"][ids.index("SIM1-USD")]
    assert sim1["quote_currency_id"] == "USD" and sim1["base_currency_id"] == "SIM1"
    assert isinstance(sim1["price"], str) and float(sim1["price"]) > 0 and float(sim1["volume_24h"]) > 0
    assert set(sim1) == set(body["products"][ids.index("BTC-USD")])


def _jwt(sim, method="GET", path="/api/v3/brokerage/accounts", key=None, name=None, now=None, uri_host=None):
    key_name, pem = sim.credentials("coinbase")
    private = key or load_pem_private_key(pem.encode(), password=None)
    host = uri_host or sim.urls["coinbase"].rest_url.split("//")[1]
    now = int(time.time()) if now is None else now
    claims = {"sub": name or key_name, "iss": "cdp", "nbf": now, "exp": now + 120, "uri": f"{method} {host}{path}"}
    return jwt.encode(claims, private, algorithm="ES256", headers={"kid": name or key_name,
                                                                   "nonce": secrets.token_hex(16)})


def test_accounts_need_a_valid_jwt_and_paginate(sim):
    url = sim.urls["coinbase"].rest_url + "/api/v3/brokerage/accounts"
    status, _, body = http_get(url)
    assert status == 401 and body["error"] == "UNAUTHENTICATED"
    wrong_key = ec.generate_private_key(ec.SECP256R1())
    bad = [_jwt(sim, key=wrong_key), _jwt(sim, now=int(time.time()) - 600), _jwt(sim, path="/api/v3/other"),
           _jwt(sim, name="organizations/x/apiKeys/y"), "not.a.jwt"]
    for token in bad:
        status, _, body = http_get(url, {"Authorization": f"Bearer {token}"})
        assert status == 401, body
    seen = []
    cursor = ""
    while True:
        q = f"?limit=50&cursor={cursor}" if cursor else "?limit=50"
        status, _, body = http_get(url + q, {"Authorization": f"Bearer {_jwt(sim)}"})
        assert status == 200, body
        seen.extend(a["uuid"] for a in body["accounts"])
        assert body["size"] == len(body["accounts"])
        if not body["has_next"]:
            assert body["cursor"] is None
            break
        cursor = body["cursor"]
    assert len(seen) == len(set(seen)) > 50
    status, _, body = http_get(sim.urls["coinbase"].rest_url + "/api/v3/brokerage/best_bid_ask?product_ids=SIM1-USD",
                          {"Authorization": f"Bearer {_jwt(sim, path='/api/v3/brokerage/best_bid_ask')}"})
    assert status == 200
    book = body["pricebooks"][0]
    assert book["product_id"] == "SIM1-USD" and float(book["bids"][0]["price"]) < float(book["asks"][0]["price"])


def test_replay_recording_sends_the_real_frames(recordings_dir):
    from streaming.sim.testing import running_simulator

    with running_simulator(sim_config(symbols=1, synthetic_live=False, recordings=recordings_dir)) as s:
        async def go():
            async with connect(s.urls["coinbase"].ws_url) as ws:
                await ws.send(json.dumps({**SUB, "product_ids": ["BTC-USD", "ETH-USD"]}))
                await ws.send(json.dumps({"type": "subscribe", "channel": "heartbeats", "product_ids": []}))
                await recv_json(ws)
                await recv_json(ws)
                import asyncio

                n = await asyncio.to_thread(s.replay, recordings_dir / "coinbase/ws_recording_2026-08-09_btc_eth.jsonl")
                assert n > 20
                frames = [await recv_json(ws) for _ in range(n)]
                snaps = [f for f in frames if f["channel"] == "candles" and f["events"][0]["type"] == "snapshot"]
                assert len(snaps) == 2 and len(snaps[0]["events"][0]["candles"]) == 100
                assert snaps[0]["timestamp"] == "2026-08-09T21:05:48.228971266Z"
                seqs = [f["sequence_num"] for f in frames]
                assert seqs == list(range(seqs[0], seqs[0] + n))
        run(go())
