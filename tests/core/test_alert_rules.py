"""Alert rules: levels, deepest choice, boundaries, cooldown, baseline, reversals, nulls, state."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.alerts.rules import (
    DEFAULT_CONFIG,
    AlertConfig,
    AlertState,
    evaluate,
    level_label,
)
from streaming.indicators import MacdVValue
from streaming.store.alert_state import (
    alert_state_args,
    alert_state_fields,
    alert_state_write,
    decode_alert_state,
)

T0 = 1_700_000_000_000
BAR = 300_000


def val(mv: float | None, hist: float | None = None, sig: float | None = None) -> MacdVValue:
    if sig is None and hist is not None and mv is not None:
        sig = mv - hist
    return MacdVValue(mv, sig, hist, 1.0, 1.0, 1.0, None, mv is not None, 0.0, None if mv is not None else "x", 40)


def run(seq, state: AlertState | None = None, start: int = T0, step: int = BAR, **kw):
    """Feed readings one bar apart; returns the final state and the labels fired per step."""
    state = state or AlertState()
    fired = []
    for i, v in enumerate(seq):
        value = v if isinstance(v, MacdVValue) else val(v)
        state, signals = evaluate(state, value, start + i * step, **kw)
        fired.append([s.label for s in signals])
    return state, fired


@pytest.mark.parametrize("level", DEFAULT_CONFIG.oversold_levels)
def test_every_oversold_level_fires_on_crossing(level):
    _, fired = run([level + 1.0, level - 1.0])
    assert fired == [[], [f"level_{int(level)}"]]


@pytest.mark.parametrize("level", DEFAULT_CONFIG.overbought_levels)
def test_every_overbought_level_fires_on_crossing(level):
    _, fired = run([level - 1.0, level + 1.0])
    assert fired == [[], [f"level_{int(level)}"]]


@pytest.mark.parametrize("level", [*DEFAULT_CONFIG.oversold_levels, *DEFAULT_CONFIG.overbought_levels])
def test_equality_boundaries(level):
    away = 1.0 if level < 0 else -1.0
    # prev exactly on the level, then beyond it: fires (prev >= L / prev <= L)
    assert run([level, level - away])[1][1] == [level_label(level)]
    # landing exactly on the level is not a crossing (cur < L / cur > L are strict)
    assert run([level + away, level])[1][1] == []
    # and then leaving it outward does fire
    assert run([level + away, level, level - away])[1] == [[], [], [level_label(level)]]


def test_deepest_level_is_the_one_alert():
    _, fired = run([-100.0, -390.0])
    assert fired[1] == ["level_-350"]
    _, fired = run([0.0, 1000.0])
    assert fired[1] == ["level_400"]
    _, fired = run([140.0, 260.0])
    assert fired[1] == ["level_250"]


def test_moving_back_toward_zero_never_fires_levels():
    _, fired = run([-390.0, -100.0, 390.0, 100.0])
    assert fired[1] == [] and fired[3] == []
    # but -100 -> 390 is an upward crossing of all overbought levels up to 350
    assert fired[2] == ["level_350"]


def test_first_value_is_only_a_baseline():
    state, fired = run([-500.0])
    assert fired == [[]] and state.prev_macd_v == -500.0


def test_cooldown_blocks_same_level_until_it_expires():
    seq = [-140.0, -160.0, -140.0, -160.0]
    _, fired = run(seq, step=60_000)  # a minute apart: the second crossing is inside 5 min
    assert fired == [[], ["level_-150"], [], []]
    _, fired = run(seq, step=150_000)  # crossings 300 s apart: exactly at expiry, fires
    assert fired == [[], ["level_-150"], [], ["level_-150"]]
    _, fired = run(seq, step=149_999)
    assert fired[3] == []
    # a different level is not blocked by another level's cooldown
    _, fired = run([-140.0, -160.0, -190.0, -210.0], step=1_000)
    assert fired == [[], ["level_-150"], [], ["level_-200"]]


def test_cooldown_is_configurable_and_expired_entries_are_dropped():
    state, fired = run([-140.0, -160.0, -140.0, -160.0], step=1_000, cooldown_ms=1_500)
    assert fired[3] == ["level_-150"]
    state, _ = run([-140.0], state=state, start=T0 + 10_000_000)
    assert dict(state.cooldowns) == {}


def test_deepest_level_cooling_means_no_level_alert():
    state, fired = run([-190.0, -210.0, -190.0], step=1_000)
    assert fired[1] == ["level_-200"]
    _, fired = run([-260.0], state=state, start=T0 + 3_000)
    # crosses -200 and -250: deepest is -250, not cooling, fires
    assert fired == [["level_-250"]]
    state, fired = run([-140.0, -210.0, -140.0, -210.0], step=1_000)
    assert fired == [[], ["level_-200"], [], []]  # -200 cooling: -150 is not substituted


def test_reversal_from_oversold_fires_once_per_excursion_and_rearms():
    # histogram > 5% of |MACD-V|: at -201, needs > 10.05
    seq = [val(-160.0, 0.0), val(-201.0, 10.05), val(-201.0, 10.06), val(-190.0, 30.0), val(-170.0, 30.0)]
    state, fired = run(seq)
    assert fired == [[], ["level_-200"], ["reversal_oversold"], [], []]
    assert state.oversold_latched
    # leaving the zone resets the latch; the next excursion may fire again
    seq2 = [val(-150.0, 30.0), val(-180.0, -5.0), val(-185.0, 20.0)]
    state, fired = run(seq2, state=state, start=T0 + 10 * BAR)
    assert fired == [[], ["level_-150"], ["reversal_oversold"]]


def test_reversal_from_overbought_needs_negative_histogram_beyond_3_percent():
    # histogram < -3% of |MACD-V|: at 201, needs < -6.03
    seq = [val(190.0, 0.0), val(201.0, -6.02), val(201.0, -6.04), val(180.0, -20.0), val(149.0, -20.0)]
    state, fired = run(seq)
    assert fired == [[], ["level_200"], ["reversal_overbought"], [], []]
    assert not state.overbought_latched  # 149 left the zone


def test_reversal_needs_both_prev_and_cur_in_zone():
    _, fired = run([val(-140.0, 0.0), val(-170.0, 50.0)])
    assert fired[1] == ["level_-150"]  # cur in zone but prev not: no reversal
    _, fired = run([val(-170.0, 0.0), val(-150.0, 50.0)])
    assert fired[1] == []  # -150 itself is not below -150


def test_level_and_reversal_can_fire_together():
    _, fired = run([val(-190.0, 0.0), val(-210.0, 15.0)])
    assert fired[1] == ["level_-200", "reversal_oversold"]


def test_reversal_blocked_by_cooldown_does_not_latch():
    state, fired = run([val(-170.0), val(-180.0, 20.0)], step=1_000)
    assert fired[1] == ["reversal_oversold"]
    state = AlertState(state.prev_macd_v, state.cooldowns, False, False)  # pretend a re-arm
    state, fired = run([val(-180.0, 20.0), val(-180.0, 20.0)], state=state, start=T0 + 2_000, step=BAR)
    assert fired == [[], ["reversal_oversold"]]


def test_reversal_needs_histogram():
    _, fired = run([val(-170.0), val(-180.0, None)])
    assert fired[1] == []


def test_null_value_never_alerts_and_drops_the_baseline():
    state, fired = run([-140.0, None, -160.0, -140.0, -160.0])
    # after the null, -160 only sets a new baseline; the real crossing later fires
    assert fired == [[], [], [], [], ["level_-150"]]
    state, _ = run([-100.0, None])
    assert state.prev_macd_v is None
    state, _ = run([-100.0, float("nan")])
    assert state.prev_macd_v is None


def test_null_keeps_latches_so_no_duplicate_reversal():
    state, fired = run([val(-170.0), val(-180.0, 20.0), val(None), val(-185.0), val(-180.0, 20.0)])
    assert fired == [[], ["reversal_oversold"], [], [], []]
    assert state.oversold_latched


def test_signal_carries_values():
    state, signals = evaluate(AlertState(prev_macd_v=-140.0), val(-160.0, 12.0), T0)
    (s,) = signals
    assert (s.type, s.label, s.level, s.macd_v, s.histogram, s.signal) == (
        "level",
        "level_-150",
        -150,
        -160.0,
        12.0,
        -172.0,
    )
    assert state.cooldowns == {"level_-150": T0 + BAR}


def test_state_round_trip_through_flat_dict():
    state, _ = run([val(-170.0), val(-210.0, 20.0)])
    d = alert_state_fields(state)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in d.items())
    assert decode_alert_state(d) == state
    as_bytes = {k.encode(): v.encode() for k, v in d.items()}
    assert decode_alert_state(as_bytes) == state
    assert decode_alert_state({}) == AlertState()
    assert set(alert_state_fields(AlertState())) == set(d)  # fixed field set: HSET replaces it all
    assert decode_alert_state(alert_state_fields(AlertState(prev_macd_v=-0.1 + 1e-17))).prev_macd_v == -0.1 + 1e-17


_STATES = st.builds(
    AlertState,
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.dictionaries(st.sampled_from(["level_150", "level_-150", "reversal_oversold"]), st.integers(0, 2**53)),
    st.booleans(), st.booleans())


@given(_STATES, _STATES)
def test_a_change_writes_exactly_the_fields_that_differ_and_the_whole_state_as_json(old, new):
    before, after = alert_state_fields(old), alert_state_fields(new)
    args, whole = alert_state_write(old, new, stored=True)
    changes = dict(zip(*[iter(args)] * 2, strict=True))
    assert all(after[k] == v != before[k] for k, v in changes.items())  # nothing written for nothing
    assert decode_alert_state({**before, **changes}) == new  # the stored hash reads as the new state
    assert (orjson.loads(whole) == alert_state_args(new)) if changes else whole == ""
    assert alert_state_write(old, new, stored=False) == (alert_state_args(new), "")  # not stored: all of it


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"v": "9"}, "version"),
        ({"prev_macd_v": "abc"}, "prev_macd_v"),
        ({"prev_macd_v": "inf"}, "not finite"),
        ({"cooldowns": "{"}, "not JSON"),
        ({"cooldowns": '{"level_-150": "soon"}'}, "integer epoch"),
        ({"cooldowns": "[1]"}, "integer epoch"),
        ({"oversold_latched": "yes"}, "'0' or '1'"),
    ],
)
def test_bad_state_dict_is_a_clear_error(patch, match):
    with pytest.raises(ValueError, match=match):
        decode_alert_state({**alert_state_fields(AlertState()), **patch})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"oversold_levels": (150,)}, "negative"),
        ({"overbought_levels": (-1,)}, "positive"),
        ({"oversold_levels": ()}, "non-empty"),
        ({"oversold_levels": [-150]}, "tuple"),
        ({"overbought_levels": (200, 200)}, "duplicate"),
        ({"overbought_levels": (float("nan"),)}, "finite"),
        ({"oversold_reversal_pct": 5}, "fractions"),
        ({"oversold_zone": 10}, "negative"),
        ({"overbought_zone": "150"}, "finite number"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlertConfig(**kwargs)


def test_custom_config_levels_and_percentages():
    cfg = AlertConfig(
        oversold_levels=(-100.5,), overbought_levels=(100,), oversold_zone=-100, oversold_reversal_pct=0.5
    )
    _, fired = run([-100.0, -101.0], config=cfg)
    assert fired[1] == ["level_-100.5"]
    _, fired = run([val(-120.0), val(-120.0, 59.0), val(-120.0, 61.0)], config=cfg)
    assert fired == [[], [], ["reversal_oversold"]]


@pytest.mark.parametrize("now", [1.5, "1", True, None])
def test_bad_now_ms(now):
    with pytest.raises(ValueError, match="now_ms"):
        evaluate(AlertState(), val(1.0), now)


def test_bad_cooldown():
    with pytest.raises(ValueError, match="cooldown_ms"):
        evaluate(AlertState(), val(1.0), T0, cooldown_ms=-1)


readings = st.one_of(st.none(), st.floats(-600, 600))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(readings, st.floats(-100, 100)), min_size=1, max_size=60))
def test_properties_over_random_walks(steps):
    state = AlertState()
    prev_valid = None
    for i, (mv, hist) in enumerate(steps):
        now = T0 + i * BAR
        new_state, signals = evaluate(state, val(mv, hist if mv is not None else None), now)
        levels = [s for s in signals if s.type == "level"]
        assert len(levels) <= 1
        if mv is None or prev_valid is None:
            assert signals == []
        for s in levels:
            assert (prev_valid >= s.level > mv) or (prev_valid <= s.level < mv)
            assert s.level in DEFAULT_CONFIG.oversold_levels + DEFAULT_CONFIG.overbought_levels
        for s in signals:
            assert state.cooldowns.get(s.label, -1) <= now  # never fires while cooling
        assert decode_alert_state(alert_state_fields(new_state)) == new_state
        state, prev_valid = new_state, mv


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-400, -151), min_size=2, max_size=40), st.lists(st.floats(0, 200), min_size=40, max_size=40))
def test_at_most_one_reversal_per_oversold_excursion(path, hists):
    _, fired = run([val(m, h) for m, h in zip(path, hists, strict=False)])
    assert sum(labels.count("reversal_oversold") for labels in fired) <= 1
