"""Closing rules of the pure books (Coinbase CandleBook, Binance KlineBook)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.adapters.binance.kline_book import KlineBook
from streaming.adapters.coinbase.candle_book import CandleBook
from streaming.models import Candle

T0 = 1_786_309_500_000
M5 = 300_000


def c(i: int, close: float = 10.0, vol: float = 1.0) -> Candle:
    return Candle(T0 + i * M5, 10.0, max(11.0, close), 9.0, close, vol)


def closes(updates):
    return [(u.symbol, u.candle.timestamp, u.candle.close) for u in updates if u.closed]


def test_later_start_closes_previous_with_its_last_values():
    book = CandleBook()
    assert closes(book.update("A", c(0, 10))) == []
    assert closes(book.update("A", c(0, 10.5))) == []  # replaces
    out = book.update("A", c(1, 12))
    assert closes(out) == [("A", T0, 10.5)]
    assert [u.closed for u in out] == [True, False]


def test_gap_bucket_is_not_invented_and_late_update_is_a_correction():
    book = CandleBook()
    book.update("A", c(0))
    assert closes(book.update("A", c(3))) == [("A", T0, 10.0)]
    assert book.update("A", c(0, 99)) == []  # bucket 0 already closed
    assert book.update("A", c(2, 99)) == []  # older than the forming bucket
    assert book.counts["corrections"] == 2
    assert book.counts["closed"] == 1


def test_clock_closes_quiet_bucket_once_and_only_selected_symbols():
    book = CandleBook(grace_ms=3_000)
    book.update("A", c(0, 10))
    book.update("B", c(0, 20))
    assert book.on_clock(T0 + M5 + 2_999) == []
    assert closes(book.on_clock(T0 + M5 + 3_000, {"A"})) == [("A", T0, 10)]
    assert closes(book.on_clock(T0 + M5 + 3_000)) == [("B", T0, 20)]
    assert book.update("A", c(0, 11)) == []  # correction after the clock close: no second close
    assert book.counts["clock_closes"] == 2


def test_snapshot_closes_history_and_keeps_last_forming():
    book = CandleBook()
    out = book.snapshot("A", [c(0), c(1), c(4), c(5, 13)])
    assert [t for _, t, _ in closes(out)] == [T0, T0 + M5, T0 + 4 * M5]
    assert book.forming["A"] == c(5, 13)
    # a second snapshot (resubscribe) overlaps: nothing closes twice; the old forming bar closes
    out = book.snapshot("A", [c(1), c(4), c(5, 14), c(6)])
    assert closes(out) == [("A", T0 + 5 * M5, 14)]
    assert book.counts["closed"] == 4


def test_snapshot_of_one_candle_and_empty_snapshot():
    book = CandleBook()
    assert book.snapshot("A", []) == []
    out = book.snapshot("A", [c(0)])
    assert [u.closed for u in out] == [False]


def test_backfill_emits_rest_candles_in_order_and_drops_stale_forming():
    book = CandleBook()
    book.update("A", c(0))
    book.update("A", c(1, 10))  # closes 0, forming 1 (stale after a disconnect)
    assert book.gap_start("A", T0 + 4 * M5) == T0 + M5
    out = book.fill("A", [c(3, 3), c(1, 1), c(2, 2)])
    assert [(u.candle.timestamp, u.source) for u in out] == [(T0 + M5, "rest"), (T0 + 2 * M5, "rest"),
                                                             (T0 + 3 * M5, "rest")]
    assert "A" not in book.forming
    assert closes(book.update("A", c(4))) == []
    assert book.counts["gap_filled"] == 3


def test_kline_book_closes_once_and_reports_gaps():
    book = KlineBook("binance")
    assert book.on_kline(("X", "5m"), M5, c(0), False).closed is False
    assert book.on_kline(("X", "5m"), M5, c(0, 12), True).closed is True
    assert book.on_kline(("X", "5m"), M5, c(0, 12), True) is None  # duplicate (overlap of two connections)
    assert book.on_kline(("X", "5m"), M5, c(0, 13), False) is None  # late
    assert book.counts["duplicate_closes"] == 1
    assert book.gap_start(("X", "5m"), T0 + M5) is None
    assert book.gap_start(("X", "5m"), T0 + 3 * M5) == T0 + M5
    out = book.fill(("X", "5m"), M5, [c(1), c(2)])
    assert [u.source for u in out] == ["rest", "rest"]
    assert book.gap_start(("X", "5m"), T0 + 3 * M5) is None
    book.skip_to(("X", "5m"), T0 + 9 * M5)
    assert book.gap_start(("X", "5m"), T0 + 9 * M5) is None
    book.forget("X")
    assert book.gap_start(("X", "5m"), T0 + 20 * M5) is None


def test_a_bar_closed_on_a_guess_can_be_reopened_for_a_fill_once():
    book = CandleBook()
    book.update("A", c(0, 10))
    assert closes(book.on_clock(T0 + 2 * M5, grace_ms=0)) == [("A", T0, 10)]  # quiet, as far as we knew
    book.reopen("A", T0 - M5)  # not the last close: nothing changes
    assert book.last_closed("A") == T0
    book.reopen("A", T0)
    assert book.last_closed("A") == T0 - M5 and book.gap_start("A", T0 + 2 * M5) == T0
    assert closes(book.fill("A", [c(0, 10.7), c(1, 11)])) == [("A", T0, 10.7), ("A", T0 + M5, 11)]
    assert book.counts["reopened"] == 1


class _OwedEverywhere:
    """The kline book as it was before it kept the next bar owed only where it is not the one
    after the last close: one explicit entry per stream. The reference for the property below."""

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], int] = {}
        self.owed: dict[tuple[str, str], int] = {}

    def gap_start(self, key, ts):
        owed = self.owed.get(key)
        return owed if owed is not None and ts > owed else None

    def on_kline(self, key, step, ts, closed):
        last = self.last.get(key)
        if last is not None and ts <= last:
            return None
        self.owed.setdefault(key, ts)
        if closed:
            self.last[key] = ts
            self.owed[key] = ts + step
        return closed

    def fill(self, key, step, stamps):
        new = sorted(t for t in set(stamps) if t > self.last.get(key, -1))
        if new:
            self.last[key] = new[-1]
        last = self.last.get(key)
        if last is not None:
            self.owed[key] = max(self.owed.get(key, 0), last + step)
        return new

    def seed(self, key, step, newest):
        if newest > self.last.get(key, newest - 1):
            self.last[key] = newest
        self.owed[key] = max(self.owed.get(key, 0), self.last[key] + step)

    def skip_to(self, key, ts):
        self.owed[key] = max(self.owed.get(key, ts), ts)


_KEYS = [("X", "5m"), ("X", "1h"), ("Y", "5m"), ("Y", "1w")]  # 1w: a timeframe of no fixed step
# "look": no change, only the checks after every step (what is owed, where a gap starts)
_OPS = st.lists(st.tuples(st.sampled_from(["forming", "closed", "fill", "seed", "skip", "look"]),
                          st.sampled_from(_KEYS), st.integers(0, 12), st.integers(0, 3)), max_size=60)


@settings(max_examples=400, deadline=None)
@given(_OPS)
def test_kline_book_owes_exactly_what_an_entry_per_stream_owed(ops):
    book, ref = KlineBook("binance"), _OwedEverywhere()
    for op, key, i, n in ops:
        step = M5 if key[1] in ("5m", "1w") else 12 * M5
        ts = T0 + i * step
        if op in ("forming", "closed"):
            got = book.on_kline(key, step, Candle(ts, 10.0, 11.0, 9.0, 10.0, 1.0), op == "closed")
            want = ref.on_kline(key, step, ts, op == "closed")
            assert (None if got is None else got.closed) == want
        elif op == "fill":
            stamps = [ts + j * step for j in range(n)]
            got = book.fill(key, step, [Candle(t, 10.0, 11.0, 9.0, 10.0, 1.0) for t in stamps])
            assert [u.candle.timestamp for u in got] == ref.fill(key, step, stamps)
        elif op == "seed":
            book.seed(key, step, ts)
            ref.seed(key, step, ts)
        elif op == "skip":
            book.skip_to(key, ts)
            ref.skip_to(key, ts)
        for k in _KEYS:
            assert book.owed(k) == ref.owed.get(k)
            assert book.gap_start(k, ts + n * step) == ref.gap_start(k, ts + n * step)
    # a stream in step costs no entry of its own
    steps = {"5m": M5, "1h": 12 * M5}
    assert all(book.ahead[k] != book.ledger.last_closed[k] + steps[k[1]] for k in book.ahead
               if k[1] in steps and k in book.ledger.last_closed)
