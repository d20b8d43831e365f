"""GapFills: a fill that fails is tried again (never skipped over) while the stream's live items
wait; a paused stream's items wait for resume and are then replayed in order."""

from __future__ import annotations

import asyncio
from collections import Counter

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AdapterError
from streaming.adapters.gapfill import GapFills
from streaming.adapters.supervise import LoopFailures
from streaming.models import Candle
from tests.adapters.live_helpers import Recorder, wait_until

BAR = Candle(1_700_000_100_000, 1.0, 2.0, 0.5, 1.5, 3.0)


def fills(fetch, applied, replayed, rec):
    failures = LoopFailures("test stream", rec, Counter())
    return GapFills(fetch, lambda k, c, e: applied.append((k, c, e)), lambda k, i: replayed.append((k, i)), rec,
                    failures, concurrency=2, retry=Backoff(0.01, 0.02))


async def test_a_failing_fill_is_tried_again_with_the_items_held_until_it_succeeds():
    rec = Recorder()
    attempts: list[int] = []
    applied: list = []
    replayed: list = []
    gate = asyncio.Event()

    async def fetch(key, start, end):
        attempts.append(start)
        if len(attempts) <= 2:
            raise AdapterError("coinbase: rate limited (HTTP 429), retry after 1s")
        await gate.wait()
        return [BAR]

    f = fills(fetch, applied, replayed, rec)
    f.start("X", 100, 400, "first")
    f.hold("X", "second")
    await wait_until(lambda: len(attempts) == 3, 5, "a third attempt")
    assert f.unconfirmed == {"X"} and applied == [] and replayed == []  # still waiting for an answer
    assert f.counts["gapfill_failures"] == 2 and f.counts["gapfill_retries"] == 2
    assert any("gap fill of X failed" in (d or "") and "trying again" in (d or "") for _, d in rec.states)
    gate.set()
    await wait_until(lambda: len(replayed) == 2, 5, "the held items")
    assert applied == [("X", [BAR], 400)]  # the exchange's answer, never None (given up)
    assert replayed == [("X", "first"), ("X", "second")]
    assert not f.holding("X") and f.unconfirmed == set()
    await f.close()


async def test_a_stream_failing_right_now_is_unconfirmed_and_dropping_it_stops_the_retries():
    rec = Recorder()
    attempts: list[int] = []

    async def fetch(key, start, end):
        attempts.append(start)
        raise AdapterError("down")

    f = fills(fetch, [], [], rec)
    f.start("X", 100, 400, "first")
    await wait_until(lambda: len(attempts) >= 2, 5, "retries")
    assert f.unconfirmed == {"X"}
    f.drop(lambda key: key != "X")  # unsubscribed
    n = len(attempts)
    await asyncio.sleep(0.1)
    assert len(attempts) <= n + 1 and not f.holding("X") and f.unconfirmed == set()
    await f.close()


async def test_paused_items_wait_for_resume_then_replay_in_order():
    replayed: list = []

    async def fetch(key, start, end):
        return []

    f = fills(fetch, [], replayed, Recorder())
    f.pause("X")
    f.hold("X", 1)
    f.hold("X", 2)
    assert f.holding("X") and replayed == []
    f.resume("X")
    assert replayed == [("X", 1), ("X", 2)] and not f.holding("X")
    await f.close()
