"""Gap filling with flat synthetic candles."""

from __future__ import annotations

import pytest

from streaming.gaps import GapFillError, fill_gaps, synthetic_between, synthetic_candle
from streaming.models import Candle
from tests.core.data import frame_candles, load_frame

M5 = 300_000


def test_recording_with_gaps_gets_its_six_missing_buckets(fixtures_dir):
    raw = frame_candles(load_frame(fixtures_dir, "XRP_ETH-5m_with_gaps.csv"))
    filled = fill_gaps(raw, "5m")
    assert len(raw) == 706 and len(filled) == 712
    assert [c.timestamp for c in filled] == list(range(raw[0].timestamp, raw[-1].timestamp + M5, M5))
    synthetic = [(i, c) for i, c in enumerate(filled) if c.synthetic]
    assert len(synthetic) == 6
    for i, c in synthetic:
        prev = filled[i - 1]
        assert c.open == c.high == c.low == c.close == prev.close
        assert c.volume == 0.0
    # every real candle is kept, unchanged and in order
    assert [c for c in filled if not c.synthetic] == raw


def test_contiguous_input_is_returned_as_is(fixtures_dir):
    raw = frame_candles(load_frame(fixtures_dir, "XRP_USDT-5m.csv"))
    assert fill_gaps(raw, "5m") == raw


def test_multi_bar_gap_and_other_timeframe():
    h = 3_600_000
    a = Candle(0, 1, 2, 0.5, 1.5, 10)
    b = Candle(4 * h, 2, 3, 1, 2.5, 5)
    out = fill_gaps([a, b], "1h")
    assert [c.timestamp for c in out] == [0, h, 2 * h, 3 * h, 4 * h]
    assert all(c.synthetic and c.close == 1.5 for c in out[1:4])
    assert synthetic_between(a, h, "1h") == []
    assert synthetic_between(a, 0, "1h") == []
    assert synthetic_between(a, 2 * h, "1h") == [synthetic_candle(a, h)]


def test_empty_and_single():
    assert fill_gaps([], "5m") == []
    one = [Candle(M5, 1, 1, 1, 1, 1)]
    assert fill_gaps(one, "5m") == one


@pytest.mark.parametrize(
    ("candles", "match"),
    [
        ([Candle(M5 + 1, 1, 1, 1, 1, 1)], "not aligned"),
        ([Candle(2 * M5, 1, 1, 1, 1, 1), Candle(M5, 1, 1, 1, 1, 1)], "out of order"),
        ([Candle(M5, 1, 1, 1, 1, 1), Candle(M5, 1, 1, 1, 1, 1)], "duplicated"),
        ([Candle(0, 1, 1, 1, 1, 1), Candle(20 * M5, 1, 1, 1, 1, 1)], "exceeds max_fill=5"),
    ],
)
def test_bad_input_is_a_clear_error(candles, match):
    with pytest.raises(GapFillError, match=match):
        fill_gaps(candles, "5m", max_fill=5)


def test_unknown_timeframe():
    with pytest.raises(ValueError, match="unknown timeframe"):
        fill_gaps([], "7m")
