"""Tier 2 valuation: pricing balances in USD, thresholds, fiat/stablecoins, missing markets."""

import math

import pytest

from livermore_pipelines.valuation import usd_markets, value_balances
from streaming.models import Balance, ProductStats


def p(symbol, base, quote, price, **kw):
    return ProductStats(exchange="x", symbol=symbol, base=base, quote=quote, price=price, volume_24h=1.0,
                        quote_volume_24h=price, **kw)


PRODUCTS = [
    p("BTC-USD", "BTC", "USD", 60000.0), p("BTC-USDC", "BTC", "USDC", 59990.0, alias_of="BTC-USD"),
    p("ETHUSDT", "ETH", "USDT", 2000.0), p("ETHUSDC", "ETH", "USDC", 2001.0),
    p("DOGE-USD", "DOGE", "USD", 0.1), p("OLD-USD", "OLD", "USD", 5.0, status="delisted"),
    p("ZERO-USD", "ZERO", "USD", 0.0), p("NAN-USD", "NAN", "USD", math.nan),
]


def test_usd_markets_prefers_usd_then_usdc_then_usdt_and_skips_unusable():
    m = usd_markets(PRODUCTS)
    assert m["BTC"].symbol == "BTC-USD"
    assert m["ETH"].symbol == "ETHUSDC"
    assert "OLD" not in m and "ZERO" not in m and "NAN" not in m


def test_value_keeps_holdings_at_or_above_threshold_largest_first():
    v = value_balances([Balance("BTC", 0.001, 0.0005), Balance("ETH", 1.0), Balance("DOGE", 19.0),
                        Balance("doge", 1.0)], PRODUCTS, min_value_usd=2.0)
    assert [(h.asset, h.symbol) for h in v.holdings] == [("ETH", "ETHUSDC"), ("BTC", "BTC-USD"), ("DOGE", "DOGE-USD")]
    btc = v.holdings[1]
    assert btc.quantity == pytest.approx(0.0015) and btc.value_usd == pytest.approx(90.0)
    assert v.holdings[2].value_usd == pytest.approx(2.0)  # 19 + 1 DOGE summed across accounts, exactly $2


def test_value_reports_every_skipped_asset_with_a_reason():
    v = value_balances([Balance("USD", 100.0), Balance("USDC", 50.0), Balance("EUR", 9.0), Balance("DOGE", 5.0),
                        Balance("OLD", 100.0), Balance("XYZ", 3.0), Balance("BTC", 0.0), Balance("ETH", math.nan)],
                       PRODUCTS)
    assert v.holdings == []
    assert v.skipped["USD"] == v.skipped["USDC"] == v.skipped["EUR"] == "fiat or stablecoin"
    assert v.skipped["DOGE"].startswith("worth $0.50")
    assert v.skipped["OLD"] == v.skipped["XYZ"] == "no tradable USD/USDC/USDT market"
    assert v.skipped["BTC"] == "zero balance"
    assert v.skipped["ETH"] == "quantity is not a number"


def test_excluded_assets_and_bad_threshold():
    v = value_balances([Balance("BTC", 1.0)], PRODUCTS, excluded_assets=["btc"])
    assert v.holdings == [] and v.skipped["BTC"] == "fiat or stablecoin"
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError, match="min_value_usd"):
            value_balances([], PRODUCTS, min_value_usd=bad)
