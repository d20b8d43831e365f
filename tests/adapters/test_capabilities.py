"""Adapters declare what their exchange can do; the factory and the worker ask them."""

from __future__ import annotations

import pytest

from streaming.adapters.base import AdapterError
from streaming.adapters.binance.adapter import BinanceAdapter, BinanceUSAdapter
from streaming.adapters.coinbase.adapter import CoinbaseAdapter
from streaming.adapters.factory import adapter_class, build_adapter
from streaming.timeframes import TIMEFRAMES
from streaming.worker.session import live_timeframes
from tests.adapters.live_helpers import Recorder

ROWS = {
    "coinbase": {"id": 1, "name": "coinbase", "ws_url": "wss://advanced-trade-ws.coinbase.com",
                 "rest_url": "https://api.coinbase.com"},
    "binance": {"id": 2, "name": "binance", "ws_url": "wss://stream.binance.com:9443",
                "rest_url": "https://api.binance.com"},
    "binance_us": {"id": 3, "name": "binance_us", "ws_url": "wss://stream.binance.us:9443",
                   "rest_url": "https://api.binance.us"},
}


def test_declared_capabilities():
    assert adapter_class("coinbase") is CoinbaseAdapter and adapter_class("binance_us") is BinanceUSAdapter
    assert CoinbaseAdapter.native_timeframes == {"5m"}
    assert BinanceAdapter.native_timeframes == BinanceUSAdapter.native_timeframes == set(TIMEFRAMES)
    for cls in (CoinbaseAdapter, BinanceAdapter):
        assert set(TIMEFRAMES) <= cls.rest_timeframes <= cls.exchange_intervals | {"5m"}
    assert "1w" in BinanceAdapter.exchange_intervals and "1w" not in BinanceAdapter.rest_timeframes
    assert BinanceAdapter.max_streams_per_connection == 1024 and CoinbaseAdapter.max_streams_per_connection is None
    assert BinanceAdapter.connection_lifetime_s == 86_400 and CoinbaseAdapter.connection_lifetime_s is None
    assert BinanceUSAdapter.default_limits["rest_weight_per_minute"] == 1200
    assert BinanceAdapter.default_limits["rest_weight_per_minute"] == 6000
    assert CoinbaseAdapter.default_limits["rest_public_per_second"] == 10


def test_the_factory_takes_limits_and_intervals_from_the_class():
    us = build_adapter(ROWS["binance_us"], {})
    assert type(us) is BinanceUSAdapter and us.config.api_limits["rest_weight_per_minute"] == 1200
    assert us.config.api_limits["ws_connection_lifetime_hours"] == 24
    cb = build_adapter({**ROWS["coinbase"], "ws_timeframes": ["5m", "1m"]}, {})
    assert cb.config.timeframes == ("5m", "1m")
    with pytest.raises(AdapterError, match="'1w'"):
        build_adapter({**ROWS["coinbase"], "ws_timeframes": ["5m", "1w"]}, {})  # not a Coinbase interval


@pytest.mark.parametrize("name,want", [("coinbase", ["5m"]), ("binance", list(TIMEFRAMES)),
                                       ("binance_us", list(TIMEFRAMES))])
def test_the_worker_streams_what_the_adapter_declares(name, want):
    # the row's ws_timeframes no longer decide: a row listing every interval streams the same
    row = {**ROWS[name], "ws_timeframes": ["1m", "5m", "15m", "1h", "4h", "1d"]}
    assert live_timeframes(build_adapter(row, {})) == want


def test_live_refuses_what_the_websocket_cannot_stream():
    cb = build_adapter(ROWS["coinbase"], {})
    with pytest.raises(AdapterError) as exc:
        cb.live(["BTC-USD"], ["5m", "1h", "4h"], Recorder())
    assert "1h, 4h" in str(exc.value) and "streams 5m" in str(exc.value)
    with pytest.raises(AdapterError, match="at least one timeframe"):
        cb.live(["BTC-USD"], [], Recorder())
    assert cb.live(["BTC-USD"], ["5m", "5m"], Recorder()) is not None
    bn = build_adapter(ROWS["binance"], {})
    with pytest.raises(AdapterError, match="1m"):
        bn.live(["BTCUSDT"], ["5m", "1m"], Recorder())
    assert bn.live(["BTCUSDT"], list(TIMEFRAMES), Recorder()).stats()["streams"] == 0  # built, not started
