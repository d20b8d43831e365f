"""REST body parsers against the recorded REST responses."""

from __future__ import annotations

import itertools
import json

import pytest

from streaming.adapters.base import AdapterError
from streaming.adapters.binance import rest as brest
from streaming.adapters.coinbase import rest as crest
from streaming.models import Balance, Candle


def test_coinbase_products(recordings_dir):
    products = crest.parse_products((recordings_dir / "coinbase/rest_market_products.json").read_bytes())
    assert len(products) == 920
    by = {p.symbol: p for p in products}
    btc = by["BTC-USD"]
    assert (btc.base, btc.quote, btc.price, btc.volume_24h) == ("BTC", "USD", 65086.18, 2867.54532609)
    assert btc.quote_volume_24h == 186637571.25
    assert btc.tradable and btc.alias_of is None
    assert by["BTC-USDC"].alias_of == "BTC-USD"
    assert sum(p.alias_of is not None for p in products) == 400
    delisted = [p for p in products if p.status == "delisted"]
    assert len(delisted) == 8 and not any(p.tradable for p in delisted)
    raw = json.loads((recordings_dir / "coinbase/rest_market_products.json").read_text())["products"]
    disabled = {p["product_id"] for p in raw if p["trading_disabled"]}
    assert disabled and all(not by[s].tradable for s in disabled)
    blank = [p["product_id"] for p in raw if p["volume_24h"] == ""]
    assert len(blank) == 11 and all(by[s].volume_24h == 0.0 for s in blank)


def test_coinbase_candle_pages_join_into_781_contiguous_days(fixtures_dir):
    pages = [crest.parse_candles((fixtures_dir / f"coinbase/rest_get_product_candles_all_call_{i}.json")
                                 .read_bytes(), 86_400_000) for i in (1, 2, 3)]
    assert [bad for _, bad in pages] == [0, 0, 0]
    assert [len(c) for c, _ in pages] == [300, 300, 181]
    candles = sorted((c for page, _ in pages for c in page), key=lambda c: c.timestamp)
    assert len(candles) == 781
    assert all(b.timestamp - a.timestamp == 86_400_000 for a, b in itertools.pairwise(candles))
    assert candles[0].timestamp == 1609459200_000  # 2021-01-01, oldest first
    single, _ = crest.parse_candles((fixtures_dir / "coinbase/rest_get_product_candles.json").read_bytes(),
                                    86_400_000)
    assert single[-1] == Candle(1675123200_000, 0.2392, 0.2441, 0.235, 0.2413, 28515145.3)


def test_coinbase_accounts_pages(fixtures_dir, recordings_dir):
    b1, more1, cur1 = crest.parse_accounts((recordings_dir / "coinbase/rest_list_accounts_all_call_1.json")
                                           .read_bytes())
    b2, more2, cur2 = crest.parse_accounts((recordings_dir / "coinbase/rest_list_accounts_all_call_2.json")
                                           .read_bytes())
    assert (more1, cur1, more2, cur2) == (True, "somecursor", False, None)
    assert len(b1) == len(b2) == 49
    first, *_ = crest.parse_accounts((fixtures_dir / "coinbase/rest_list_accounts.json").read_bytes())
    assert first[0] == Balance("SAND", 242.21, 0.0)
    with pytest.raises(AdapterError):
        crest.parse_accounts((fixtures_dir / "coinbase/rest_default_failure_response.json").read_bytes())


def test_binance_exchange_info_and_products(recordings_dir):
    body = (recordings_dir / "binance/rest_exchangeInfo_2021-10-12.json").read_bytes()
    info = brest.parse_exchange_info(body)
    assert len(info) == 1695
    assert sum(i.status == "TRADING" for i in info.values()) == 1262
    ticker = json.dumps([{"symbol": "ETHBTC", "lastPrice": "0.065", "volume": "1000", "quoteVolume": "65"}]).encode()
    products = {p.symbol: p for p in brest.parse_products(body, ticker)}
    assert len(products) == 1695
    eth = products["ETHBTC"]
    assert (eth.base, eth.quote, eth.price, eth.volume_24h, eth.quote_volume_24h, eth.tradable) == (
        "ETH", "BTC", 0.065, 1000.0, 65.0, True)
    broken = next(p for p in products.values() if p.status == "break")
    assert not broken.tradable and broken.price == 0.0


def test_binance_klines_and_account():
    rows = [[1633996800000, "1", "2", "0.5", "1.5", "10", 1633997099999, "15", 3, "1", "1", "0"],
            [1633996500000, "1", "2", "0.5", "1.2", "10", 0, "0", 0, "0", "0", "0"],
            [1633997100000, "1", "NaN", "0.5", "1.5", "10"], ["x"]]
    candles, bad = brest.parse_klines(json.dumps(rows).encode(), 300_000)
    assert [c.timestamp for c in candles] == [1633996500000, 1633996800000] and bad == 2
    balances = brest.parse_account(b'{"balances":[{"asset":"BTC","free":"0.5","locked":"0.25"}]}')
    assert balances == [Balance("BTC", 0.5, 0.25)] and balances[0].total == 0.75
    assert brest.error_of(b'{"code":-1121,"msg":"Invalid symbol."}') == (-1121, "Invalid symbol.")
