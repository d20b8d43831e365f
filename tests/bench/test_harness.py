"""The benchmark harness works (not a timed test: no rates, no thresholds): the load server's
pre-encoded frames are valid Binance klines with the right bars, a plain client receives every
frame over several connections, the REST endpoints answer, and the subscriber counts and parses
real Redis pub/sub messages."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import redis

from bench import frames as fr
from bench.ceiling import CeilingClient, split
from bench.loadserver import LoadServer, Plan, Sent
from bench.scenarios import match, worker_key
from bench.subscriber import Subscriber, parse
from streaming.adapters.binance.parse import KLINE, parse_frame


def wire_frames(wire: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(wire):
        assert wire[i] == 0x81  # final text frame, unmasked
        n, head = wire[i + 1], 2
        if n == 126:
            n, head = int.from_bytes(wire[i + 2:i + 4], "big"), 4
        out.append(wire[i + head:i + head + n])
        i += head + n
    return out


def test_patched_blocks_are_klines_of_the_right_bars():
    sids = fr.streams_of(4)
    block = fr.build_block(sids, fr.MIXED, per_close=10, bar_offset=40)
    payloads = wire_frames(block.wire(0, block.frames, 3))  # block 3: every bar 3 on
    assert len(payloads) == 10 * len(sids)
    closes = []
    for i, payload in enumerate(payloads):
        msg, raw = parse_frame(payload), json.loads(payload)
        assert msg.kind == KLINE and fr.parse_stream(raw["stream"]) == sids[i % len(sids)]
        k = raw["data"]["k"]
        assert k["T"] == k["t"] + fr.STEP_MS[k["i"]] - 1 and raw["data"]["E"] == k["t"] + fr.STEP_MS[k["i"]]
        sid, bar = fr.close_key(msg.symbol, msg.interval, msg.candle.timestamp)
        assert sid == sids[i % len(sids)] and bar in (43, 44)
        if msg.closed:
            closes.append((sid, bar))
    assert sorted(closes) == [(s, 43) for s in sids]  # each stream closes its bar once per block
    got_sids, got_bars = block.closes_in(0, block.frames, 3)
    assert sorted(zip(got_sids.tolist(), got_bars.tolist(), strict=True)) == sorted(closes)


def test_closes_pattern_closes_consecutive_bars():
    block = fr.build_block([7], fr.CLOSES)
    first = [parse_frame(p) for p in wire_frames(block.wire(0, block.frames, 0))]
    second = [parse_frame(p) for p in wire_frames(block.wire(0, block.frames, 1))]
    bars = [fr.close_key(m.symbol, m.interval, m.candle.timestamp)[1] for m in first + second]
    assert all(m.closed for m in first + second) and bars == list(range(2 * fr.CLOSES_BLOCK))


def test_plain_client_receives_every_frame_from_the_load_server():
    sids = fr.streams_of(5)
    with LoadServer(5) as server:
        body = json.loads(urllib.request.urlopen(f"{server.rest_url}/api/v3/exchangeInfo", timeout=10).read())
        assert [s["symbol"] for s in body["symbols"]] == [fr.symbol(k) for k in range(5)]
        with CeilingClient(server.ws_url, split(sids, 10)) as client:
            assert server.wait_streams(len(sids), timeout=30) == [10, 10, 5]
            client.start(150)
            sent = server.run(Plan(fr.MIXED, 0, 150, rate=40_000))
            assert client.finished(timeout=60) >= sent.first_ns
        assert sent.frames == 150 * len(sids) and sent.connections == 3 and not sent.overrun
        assert sorted(sent.sid.tolist()) == sids  # one close per stream in 150 rounds


def test_subscriber_counts_and_parses_real_pubsub(redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        with Subscriber(redis_url, "channel:exchange:2:candle:close:*") as sub:
            event = {"symbol": fr.symbol(3), "timeframe": "1h", "timestamp": fr.T0 + 5 * 3_600_000}
            for _ in range(3):
                client.publish("channel:exchange:2:candle:close:S00003USDT:1h", json.dumps(event))
            client.publish("elsewhere", "not counted")
            assert sub.wait_count(3, timeout=10) == 3
            events = sub.take()
    finally:
        client.close()
    assert [worker_key(ch, data) for _, ch, data in events] == [(3 * 5 + 2, 5)] * 3
    assert all(t > 0 for t, _, _ in events)


def test_resp_split_across_reads_gets_the_time_of_the_read_that_completed_it():
    msg = b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$2\r\nch\r\n$5\r\nhello\r\n"
    cut = len(msg) - 4
    assert parse([(1, b"*3\r\n$10\r\npsubscribe\r\n$1\r\n*\r\n:1\r\n" + msg[:cut]), (2, msg[cut:] + msg)]) == [
        (2, b"ch", b"hello"), (2, b"ch", b"hello")]


def test_match_counts_lost_closes():
    sent = Sent(frames=2, sid=np.array([0, 1]), bar=np.array([4, 4]), t_ns=np.array([1_000_000, 1_000_000]))
    event = json.dumps({"symbol": fr.symbol(0), "timeframe": "5m", "timestamp": fr.T0 + 4 * 300_000}).encode()
    lags, lost = match(sent, [(3_000_000, b"c", event)], worker_key)
    assert lags.tolist() == [2.0] and lost == 1
