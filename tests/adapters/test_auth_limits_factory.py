"""Signing, rate limiting, backoff and the adapter factory."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AuthError, Credentials
from streaming.adapters.binance.adapter import BinanceAdapter
from streaming.adapters.binance.auth import signed_query
from streaming.adapters.binance.streams import base_url, connect_url, pack, stream_key, stream_name
from streaming.adapters.coinbase.adapter import CoinbaseAdapter
from streaming.adapters.coinbase.auth import build_jwt, load_key
from streaming.adapters.factory import (
    BadExchangeConfigError,
    InactiveExchangeError,
    UnknownExchangeError,
    build_adapter,
    build_adapter_by_name,
)
from streaming.adapters.ratelimit import TokenBucket, WeightBudget
from streaming.adapters.symbols import split_valid


def test_binance_signature_matches_the_documented_example():
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    params = {"symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": 1,
              "price": 0.1}
    q = signed_query(params, secret, now_ms=1499827319559, recv_window=5000)
    assert q["signature"] == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_coinbase_jwt_claims_and_header():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    creds = Credentials("organizations/o/apiKeys/k", pem.replace("\n", "\\n"))
    token = build_jwt(creds.api_key, load_key(creds), "GET", "api.coinbase.com", "/api/v3/brokerage/accounts",
                      now=1_700_000_000)
    header = jwt.get_unverified_header(token)
    assert header["kid"] == creds.api_key and header["alg"] == "ES256" and len(header["nonce"]) == 32
    claims = jwt.decode(token, key.public_key(), algorithms=["ES256"], options={"verify_exp": False,
                                                                                 "verify_nbf": False})
    assert claims == {"sub": creds.api_key, "iss": "cdp", "nbf": 1_700_000_000, "exp": 1_700_000_120,
                      "uri": "GET api.coinbase.com/api/v3/brokerage/accounts"}
    with pytest.raises(AuthError) as exc:
        load_key(Credentials("k", "not a key secret-xyz"))
    assert "secret-xyz" not in str(exc.value)
    assert "secret" not in repr(creds).lower().replace("api_secret", "")


def test_token_bucket_and_weight_budget_are_pure_given_a_clock():
    now = [0.0]
    bucket = TokenBucket(4, burst=4, clock=lambda: now[0])
    assert [bucket.delay_for() for _ in range(4)] == [0, 0, 0, 0]
    assert bucket.delay_for() == pytest.approx(0.25)
    now[0] = 10.0
    assert bucket.delay_for() == 0
    t = [120.0]
    budget = WeightBudget(100, safety=1.0, clock=lambda: t[0])
    assert budget.delay_for(80) == 0
    assert budget.delay_for(30) == pytest.approx(60.05)
    budget.observe("95")
    assert budget.used == 95
    budget.observe("junk")
    t[0] = 180.0
    assert budget.delay_for(30) == 0


def test_backoff_is_capped_and_jittered():
    import random

    b = Backoff(0.5, 4.0, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    assert all(0.25 <= d <= 4.0 for d in delays) and max(delays[5:]) > 2.0
    assert all(d >= 2.0 for d in delays[4:])
    b.reset()
    assert b.next_delay() <= 0.5
    with pytest.raises(ValueError):
        Backoff(0)


def test_stream_names_urls_and_packing():
    assert stream_name("BTCUSDT", "1h") == "btcusdt@kline_1h"
    for symbol, tf in (("BTCUSDT", "1h"), ("1000SATSUSDT", "5m"), ("ETHBTC", "1d")):
        assert stream_key(stream_name(symbol, tf)) == (symbol, tf)
    assert base_url("wss://stream.binance.com:9443/ws/") == "wss://stream.binance.com:9443"
    url, rest = connect_url("ws://127.0.0.1:1/stream", ["a@kline_5m", "b@kline_5m"])
    assert url == "ws://127.0.0.1:1/stream?streams=a@kline_5m/b@kline_5m" and rest == []
    many = [f"s{i:05d}usdt@kline_15m" for i in range(2000)]
    url, rest = connect_url("ws://h", many)
    assert len(url) < 6100 and len(rest) > 0 and len(rest) + url.count("@") == 2000
    adds, new = pack([f"x{i}" for i in range(2500)], [10, 0], 1024)
    assert [len(a) for a in adds] == [10, 0] and [len(n) for n in new] == [1024, 1024, 442]


def test_split_valid_rejects_keyspace_breakers():
    good, bad, reason = split_valid(["BTC-USD", "BAD:SYM", "BTC-USD", "a b", "*", 5, "ETH-USD"])
    assert good == ["BTC-USD", "ETH-USD"] and bad == ["BAD:SYM", "a b", "*", "5"] and "rejected" in reason


ROW = {"id": 2, "name": "binance_us", "display_name": "Binance.US", "ws_url": "wss://stream.binance.us:9443",
       "rest_url": "https://api.binance.us", "ws_timeframes": ["5m", "15m", "1h", "4h", "1d"],
       "rest_timeframes": ["5m"], "api_limits": {"rest_weight_per_minute": 1200}, "fee_schedule": {},
       "geo_restrictions": {}, "is_active": True}


def test_factory_builds_each_adapter_with_env_overrides():
    env = {"LIVERMORE_BINANCE_US_WS_URL": "ws://127.0.0.1:9999", "LIVERMORE_BINANCE_US_REST_URL":
           "http://127.0.0.1:9998"}
    a = build_adapter(ROW, env)
    assert isinstance(a, BinanceAdapter)
    assert (a.config.ws_url, a.config.rest_url, a.config.exchange_id) == ("ws://127.0.0.1:9999",
                                                                          "http://127.0.0.1:9998", 2)
    assert a.config.api_limits["rest_weight_per_minute"] == 1200
    assert a.config.api_limits["ws_streams_per_connection"] == 1024  # default filled in
    assert a.rest.budget.limit == 1080
    cb = build_adapter({**ROW, "id": 1, "name": "coinbase", "ws_url": "wss://advanced-trade-ws.coinbase.com",
                        "rest_url": "https://api.coinbase.com", "api_limits": {}}, {})
    assert isinstance(cb, CoinbaseAdapter) and cb.config.ws_url == "wss://advanced-trade-ws.coinbase.com"
    every_native = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]
    b = build_adapter({**ROW, "ws_timeframes": every_native}, {})
    assert b.config.timeframes == ("1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "1d")


def test_factory_errors_name_the_exchanges():
    with pytest.raises(UnknownExchangeError) as exc:
        build_adapter({**ROW, "name": "kraken"}, {}, known=["coinbase", "binance", "kraken"])
    assert "kraken" in str(exc.value) and "coinbase" in str(exc.value)
    with pytest.raises(InactiveExchangeError) as exc:
        build_adapter({**ROW, "is_active": False}, {})
    assert "binance_us" in str(exc.value)
    with pytest.raises(UnknownExchangeError) as exc:
        build_adapter_by_name([ROW], "ftx", {})
    assert "binance_us" in str(exc.value)
    with pytest.raises(BadExchangeConfigError):
        build_adapter({**ROW, "ws_url": "ftp://x"}, {})
    with pytest.raises(BadExchangeConfigError):
        build_adapter({**ROW, "api_limits": {"rest_weight_per_minute": -1}}, {})
    with pytest.raises(BadExchangeConfigError):
        build_adapter({**ROW, "ws_timeframes": ["7m"]}, {})
    with pytest.raises(BadExchangeConfigError):
        build_adapter({**ROW, "id": "two"}, {})
