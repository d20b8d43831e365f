"""Frames built to hurt: deep nesting, invalid UTF-8, huge numbers, impossible candles, error
replies. Each is a BadFrame of a named kind (or a harmless message), never another exception."""

from __future__ import annotations

import json

import pytest

from streaming.adapters import skips as k
from streaming.adapters.binance.parse import ACK, ERROR, OTHER
from streaming.adapters.binance.parse import parse_frame as binance_parse
from streaming.adapters.coinbase.parse import parse_frame as coinbase_parse
from streaming.adapters.skips import BadFrame
from streaming.adapters.validate import MAX_PRICE, MAX_VOLUME, make_candle

PARSERS = [pytest.param(coinbase_parse, id="coinbase"), pytest.param(binance_parse, id="binance")]
DEEP = 1000


def coinbase_update(**fields: object) -> str:
    candle = {"start": "1786309500", "high": "1919.6", "low": "1919.27", "open": "1919.58", "close": "1919.41",
              "volume": "36.3", "product_id": "ETH-USD", **fields}
    return json.dumps({"channel": "candles", "timestamp": "2026-08-09T21:05:51Z", "sequence_num": 1,
                       "events": [{"type": "update", "candles": [candle]}]})


def binance_kline(**fields: object) -> str:
    k_ = {"t": 1633998240000, "T": 1633998299999, "s": "OMGBUSD", "i": "1m", "o": "13.72", "c": "13.76",
          "h": "13.80", "l": "13.70", "v": "536.51", "x": True, **fields}
    return json.dumps({"stream": "omgbusd@kline_1m", "data": {"e": "kline", "E": 1, "s": "OMGBUSD", "k": k_}})


def nest(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("frame", [
    nest(DEEP),
    '{"a":' * DEEP + "1" + "}" * DEEP,
    '{"channel":"candles","events":[{"type":"update","unknown":' + nest(DEEP) + "}]}",
    '{"result":' + nest(DEEP) + ',"id":1}',
    '{"e":"kline","k":{"t":' + nest(DEEP) + "}}",
    '{"channel":"candles","events":[{"type":"update","candles":[{"start":' + nest(DEEP) + "}]}]}",
    nest(50_000),
], ids=["list", "object", "unknown-field", "binance-result", "kline-field", "candle-field", "50k"])
def test_deep_nesting_is_a_bad_frame(parse, frame):
    with pytest.raises(BadFrame) as bad:
        parse(frame)
    assert bad.value.kind == k.TOO_DEEP


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("frame", [
    b'{"channel":"candles\xff\xfe","events":[]}',
    b'{"e":"kline\xc3","k":{}}',
    coinbase_update(product_id="ETH-USD").encode().replace(b"ETH-USD", b"ETH-\xed\xa0\x80"),  # a lone surrogate
    binance_kline().encode().replace(b"OMGBUSD", b"OMG\xffBUSD"),
    b"\xff\xfe\x00{",
])
def test_invalid_utf8_never_escapes(parse, frame):
    try:
        parse(frame)
    except BadFrame as bad:
        assert bad.kind in k.KINDS


@pytest.mark.parametrize("value,kind", [
    ("9" * 400, k.NON_FINITE), ("1e400", k.NON_FINITE), ("-1e400", k.NON_FINITE), (str(MAX_PRICE * 10), k.ABSURD),
])
def test_huge_prices_are_refused(value, kind):
    for frame, parse in ((coinbase_update(high=value), coinbase_parse), (binance_kline(h=value), binance_parse)):
        try:
            msg = parse(frame)
        except BadFrame as bad:
            assert bad.kind == kind
            continue
        # Coinbase reports a bad candle inside an otherwise good frame
        assert [b.kind for b in msg.bad] == [kind] and not msg.updates


@pytest.mark.parametrize("frame,parse", [
    (coinbase_update(start="9" * 400), coinbase_parse),
    (coinbase_update(start="4102444800"), coinbase_parse),  # 2100-01-01
    (binance_kline(t=int("9" * 40)), binance_parse),
    (binance_kline(t=-300_000), binance_parse),
])
def test_absurd_open_times_are_refused(frame, parse):
    try:
        msg = parse(frame)
    except BadFrame as bad:
        assert bad.kind in (k.BAD_TIMESTAMP, k.SCHEMA)
        return
    assert [b.kind for b in msg.bad] == [k.BAD_TIMESTAMP]


@pytest.mark.parametrize("fields,kind", [
    ({"open": 0.5, "close": 1.5}, k.INCONSISTENT),  # open below low
    ({"open": 1.5, "close": 2.5}, k.INCONSISTENT),  # close above high
    ({"high": 2e12, "open": 1.5, "close": 1.5}, k.ABSURD),
    ({"volume": MAX_VOLUME * 2}, k.ABSURD),
    ({"high": 0.5}, k.HIGH_LOW),
])
def test_candles_that_cannot_exist_are_refused(fields, kind):
    values = {"open": 1.5, "high": 2.0, "low": 1.0, "close": 1.5, "volume": 3.0, **fields}
    with pytest.raises(BadFrame) as bad:
        make_candle(1_786_309_500_000, values["open"], values["high"], values["low"], values["close"],
                    values["volume"])
    assert bad.value.kind == kind
    cb = coinbase_parse(coinbase_update(**{n: str(v) for n, v in values.items()}))
    assert [b.kind for b in cb.bad] == [kind]
    short = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
    with pytest.raises(BadFrame) as bad:
        binance_parse(binance_kline(**{short[n]: str(v) for n, v in values.items()}))
    assert bad.value.kind == kind


def test_binance_error_replies_in_both_shapes():
    documented = binance_parse('{"code": 2, "msg": "Invalid request: unknown variant", "id": 7}')
    assert documented.kind == ERROR and documented.id == 7 and documented.error == "2: Invalid request: unknown variant"
    wrapped = binance_parse('{"error": {"code": -1121, "msg": "Invalid symbol."}, "id": 8}')
    assert wrapped.kind == ERROR and wrapped.error == "-1121: Invalid symbol."
    for no_id in ('{"code": 0, "msg": "Unknown property"}', '{"error": {"code": 3, "msg": "x"}}'):
        with pytest.raises(BadFrame) as bad:
            binance_parse(no_id)
        assert bad.value.kind == k.EXCHANGE_ERROR
    assert binance_parse('{"result": null, "id": 9}').kind == ACK
    assert binance_parse('{"result": [["a"], {"b": 1}], "id": 10}').kind == ACK
    assert binance_parse('{"something": "else"}').kind == OTHER


def test_coinbase_heartbeat_times_at_the_calendar_edges_parse_or_are_dropped():
    # far times are the clock's to refuse (test_time_bounds); the parser only must not fail
    for stamp, ms in (("0001-01-01T00:00:00+01:00", -62_135_600_400_000),
                      ("9999-12-31T23:59:59-01:00", 253_402_304_399_000),
                      ("not a time", None), ("9999-12-31T23:59:59Z", 253_402_300_799_000)):
        msg = coinbase_parse(json.dumps({"channel": "heartbeats", "timestamp": stamp,
                                         "events": [{"heartbeat_counter": 5}]}))
        assert msg.heartbeat == 5 and msg.time_ms == ms
