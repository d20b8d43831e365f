"""The gap-fill bench's pure parts (not a timed test: no rates, no thresholds): reading close
events, the simulated clock in monotonic time, which bars a window owes, lags from the bar's end
and to the closing frame, the exactly-once count of the filled bars, and the table."""

from __future__ import annotations

import orjson

from bench.bench_gapfill import MIDNIGHT_MS, QUICK, Measured, streams_of, table
from bench.close_watch import closing_key
from bench.fill_lags import STEP_MS, Clock, bar_ends, by_bar_end, closes, fill, repeated_events, window
from bench.report import render
from bench.subscriber import parse_complete

CLOCK = Clock(sim_ms=MIDNIGHT_MS - 600_000, mono_ns=1_000_000_000, speed=60.0)


def event(arrived_ns: int, symbol: str, tf: str, open_ms: int, source: str = "websocket") -> tuple[int, bytes, bytes]:
    body = {"exchange_id": 2, "exchange": "binance", "symbol": symbol, "timeframe": tf, "timestamp": open_ms,
            "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 0.0, "source": source}
    return arrived_ns, f"channel:exchange:2:candle:close:{symbol}:{tf}".encode(), orjson.dumps(body)


def test_clock_maps_simulated_ms_to_monotonic_ns_and_back():
    assert CLOCK.mono(MIDNIGHT_MS) == 1_000_000_000 + 10_000_000_000  # 600 s simulated = 10 s real at 60x
    assert CLOCK.sim(CLOCK.mono(MIDNIGHT_MS + 300_000)) == MIDNIGHT_MS + 300_000


def test_closes_reads_events_and_skips_what_is_not_one():
    got = closes([event(5, "SIM1USDT", "5m", 0, "rest"), (6, b"c", b"not json"), (7, b"c", b'{"symbol": "X"}')])
    assert [(c.arrived_ns, c.symbol, c.timeframe, c.open_ms, c.source, c.end_ms) for c in got] == [
        (5, "SIM1USDT", "5m", 0, "rest", 300_000)]


def test_bar_ends_are_epoch_aligned_and_midnight_ends_every_timeframe():
    ends = bar_ends(STEP_MS, MIDNIGHT_MS - 1, MIDNIGHT_MS + 300_000)
    assert sorted(ends) == sorted([(tf, MIDNIGHT_MS) for tf in STEP_MS] + [("5m", MIDNIGHT_MS + 300_000)])
    assert bar_ends(["15m"], MIDNIGHT_MS, MIDNIGHT_MS + 899_999) == []


def test_window_lags_from_bar_end_to_event_and_to_frame_and_counts_lost_closes():
    end = MIDNIGHT_MS - 300_000  # one 5m bar of each live symbol ends in the window
    t_end = CLOCK.mono(end)
    events = [event(t_end + 150_000_000, "SIM1USDT", "5m", end - 300_000),
              event(t_end + 170_000_000, "SIM1USDT", "5m", end - 300_000),  # a repeat: the first counts
              event(t_end + 900_000_000, "SIM9USDT", "5m", end - 300_000)]  # not a live symbol here
    frames = {("SIM1USDT", "5m", end - 300_000): t_end + 100_000_000}
    w = window(closes(events), CLOCK, frames, ["SIM1USDT", "SIM2USDT"], end - 1, end)
    assert w.lags_ms.tolist() == [150.0] and w.delivery_ms.tolist() == [100.0]
    assert (w.expected, w.lost) == (2, 1)  # SIM2's close never came


def test_fill_counts_each_withheld_bar_once_and_finds_repeats_and_gaps():
    sym = ["SIM3USDT", "SIM4USDT"]
    events = [event(100 + i, s, tf, MIDNIGHT_MS - step, "rest")
              for i, (s, (tf, step)) in enumerate((s, x) for s in sym for x in STEP_MS.items())]
    events.append(event(999, "SIM3USDT", "1d", MIDNIGHT_MS - STEP_MS["1d"]))  # a second event of one bar
    events = [e for e in events if b'"SIM4USDT"' not in e[2] or b'"4h"' not in e[2]]  # one bar never closed
    f = fill(closes(events), sym, MIDNIGHT_MS)
    assert (f.streams, f.once, f.missing, f.repeated, f.from_rest, f.done_ns) == (10, 8, 1, 1, 9, 999)
    assert repeated_events(closes(events)) == 1


def test_table_renders_every_row_with_its_baseline():
    cs = closes([event(CLOCK.mono(MIDNIGHT_MS) + 200_000_000, "SIM1USDT", "5m", MIDNIGHT_MS - 300_000)])
    w = window(cs, CLOCK, {}, ["SIM1USDT"], MIDNIGHT_MS - 1, MIDNIGHT_MS)
    m = Measured(baseline=w, during=w, fill=fill(cs, ["SIM2USDT"], MIDNIGHT_MS), fill_seconds=7.0,
                 repeated=0, rest_requests=101, withheld=100)
    text = render(table(QUICK, m), "title")
    assert "bar end->event max, filling" in text and "fill of 100 streams" in text
    assert "REST floor 6.25" in text and "0 of 5 got exactly one close event" in text


def test_closing_key_only_for_closed_klines():
    frame = {"stream": "sim1usdt@kline_5m", "data": {"e": "kline", "k": {"t": 7, "s": "SIM1USDT", "i": "5m",
                                                                         "x": True}}}
    assert closing_key(orjson.dumps(frame)) == ("SIM1USDT", "5m", 7)
    frame["data"]["k"]["x"] = False  # type: ignore[index]
    assert closing_key(orjson.dumps(frame)) is None
    assert closing_key(b'{"x":true') is None
    assert streams_of(["SIM1USDT"]) == [f"sim1usdt@kline_{tf}" for tf in STEP_MS]


def test_by_bar_end_splits_a_window_by_the_bars_end():
    t0 = CLOCK.mono(MIDNIGHT_MS)
    events = [event(t0 + 100_000_000, "SIM1USDT", "5m", MIDNIGHT_MS - 300_000),
              event(t0 + 300_000_000, "SIM1USDT", "1d", MIDNIGHT_MS - 86_400_000),
              event(CLOCK.mono(MIDNIGHT_MS + 300_000) + 50_000_000, "SIM1USDT", "5m", MIDNIGHT_MS)]
    frames = {("SIM1USDT", "1d", MIDNIGHT_MS - 86_400_000): t0 + 280_000_000}
    rows = by_bar_end(closes(events), CLOCK, frames, ["SIM1USDT"], MIDNIGHT_MS - 1, MIDNIGHT_MS + 300_000)
    assert [(e, n, round(w), round(k)) for e, n, w, k in rows[:1]] == [(MIDNIGHT_MS, 2, 300, 280)]
    assert rows[1][:3] == (MIDNIGHT_MS + 300_000, 1, 50.0)


def test_a_reply_cut_by_the_last_read_waits_for_the_next_take():
    """The gap-fill bench takes events while closes flow: a pmessage cut by the read is not
    parsed (nor lost) until the read that completes it."""
    msg = b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$2\r\nch\r\n$5\r\nhello\r\n"
    for cut in range(1, len(msg)):
        events, done = parse_complete([(1, msg + msg[:cut])])
        assert events == [(1, b"ch", b"hello")] and done == len(msg)
        rest = (msg + msg[:cut])[done:]
        assert parse_complete([(1, rest), (2, msg[cut:])]) == ([(2, b"ch", b"hello")], len(msg))
