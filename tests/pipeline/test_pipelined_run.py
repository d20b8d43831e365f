"""The run loop keeps several script calls in flight: still exactly once, in order, per stream."""

from __future__ import annotations

import asyncio
import time

from redis.exceptions import ConnectionError as RedisConnectionError

from streaming import keys
from streaming.models import Candle
from streaming.pipeline.close_script import CloseOutcome
from streaming.pipeline.events import close_event_from_member, close_event_json, symbol_event_open
from streaming.pipeline.staging import stage_close, stream_head
from streaming.pipeline.state import StreamState
from streaming.store.codec import encode_candle
from tests.pipeline.helpers import Subscriber, make_pipeline, trend_candles, updates

EX = 2


def test_close_event_from_member_is_close_event_json():
    c = Candle(1_700_000_400_000, 100.3, 101.303, 99.297, 1e-9, 12.5)
    for source in ("websocket", "rest", "aggregate"):
        for tf in ("5m", "1d", 'odd"tf'):
            built = close_event_from_member(symbol_event_open(EX, 'bin"ance', "S-1/X"), tf, encode_candle(c), source)
            assert built == close_event_json(EX, 'bin"ance', "S-1/X", tf, c, source)


async def test_pipelined_run_loop_publishes_each_close_once_in_order(redis_url, redis_client):
    syms = [f"S{i:03d}USDT" for i in range(60)]
    bars = trend_candles(1.003, bars=12)
    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])

    r, p = await make_pipeline(redis_url, syms, exchange_id=EX, timeframes=("5m",), batch_max=7,
                               pipeline_depth=3)
    calls = 0
    real = p.script.call

    def flaky(specs):  # the fourth call fails as if the connection dropped: requeued, retried
        nonlocal calls
        calls += 1
        if calls == 4:
            async def boom():
                await asyncio.sleep(0.01)
                raise RedisConnectionError("dropped")
            return boom()
        return real(specs)

    p.script.call = flaky
    runner = asyncio.create_task(p.run())
    for c in bars:
        for s in syms:
            for u in updates([c], s):
                p.listener.on_candle(u)
                if c.timestamp % 3:
                    p.listener.on_candle(u)  # a duplicate frame
    while p.counters["published"] < len(syms) * len(bars):
        await asyncio.sleep(0.01)
    await p.close()
    await runner
    await r.aclose()
    stats = p.stats()
    sub.settle(redis_client)
    sub.close()
    assert stats["redis_errors"] == 1 and stats["published"] == len(syms) * len(bars)
    for s in syms:
        got = [d["timestamp"] for c, d in sub.messages if c == keys.candle_close_channel(EX, s, "5m")]
        assert got == [c.timestamp for c in bars], s
    assert not stats["queued"]


async def test_a_script_call_writes_its_command_before_the_event_loop_turns_again(redis_url, redis_client):
    """In a storm the event loop's next turns run the next slices of frames and stage the next
    batch: a staged batch must reach Redis when its call starts, not after all that."""
    r, p = await make_pipeline(redis_url, ["AAAUSDT"], exchange_id=EX, timeframes=("5m",))
    head = stream_head(EX, "binance", "AAAUSDT", "5m", (), 0)
    state = StreamState()
    bars = trend_candles(1.003, bars=3)
    first, second, third = (stage_close(state, head, c, "websocket", 0)[0] for c in bars)
    marker = keys.closed_marker(EX, "AAAUSDT", "5m")
    try:
        assert await p.script.run([first]) == [CloseOutcome.PUBLISHED]  # its connection is open now
        call = asyncio.ensure_future(p.script.run([second]))
        await asyncio.sleep(0)  # one turn: the call's first step
        # the loop is held here: only a command already written can run in Redis meanwhile
        deadline = time.monotonic() + 10
        while redis_client.get(marker) != str(bars[1].timestamp):
            assert time.monotonic() < deadline, "the command waited for the event loop's next turn"
            time.sleep(0.005)
        assert await call == [CloseOutcome.PUBLISHED]
        await p.close()  # closes the calls' own connections; a later call goes through the pool
        assert await p.script.run([third]) == [CloseOutcome.PUBLISHED]
    finally:
        await r.aclose()
