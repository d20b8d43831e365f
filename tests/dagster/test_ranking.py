"""Tier 1 ranking filters, one by one and chained, on the real Coinbase product recording."""

import math

import pytest

from livermore_pipelines.ranking import (
    STABLECOINS,
    AliasFilter,
    KeyspaceFilter,
    MinVolumeFilter,
    OnePerBaseFilter,
    QuoteFilter,
    RankingConfig,
    RankingConfigError,
    StablecoinBaseFilter,
    TradableFilter,
    rank_products,
    usd_volume,
)
from streaming.adapters.coinbase.rest import parse_products
from streaming.models import ProductStats


def product(symbol: str, base: str, quote: str, qv: float = 1000.0, price: float = 1.0, **kw) -> ProductStats:
    return ProductStats(exchange="x", symbol=symbol, base=base, quote=quote, price=price, volume_24h=qv / price,
                        quote_volume_24h=qv, **kw)


@pytest.fixture(scope="module")
def coinbase_products(recordings_dir) -> list[ProductStats]:
    return parse_products((recordings_dir / "coinbase" / "rest_market_products.json").read_bytes())


def test_tradable_filter_drops_delisted_and_disabled():
    keep = product("A-USD", "A", "USD")
    dropped = [product("B-USD", "B", "USD", status="delisted"), product("C-USD", "C", "USD", tradable=False),
               product("D-USD", "D", "USD", status="offline")]
    assert TradableFilter().apply([keep, *dropped]) == [keep]


def test_quote_filter_is_case_insensitive_and_exact():
    ps = [product("A-USD", "A", "usd"), product("A-EUR", "A", "EUR"), product("A-BTC", "A", "BTC"),
          product("AUSDT", "A", "USDT")]
    assert [p.symbol for p in QuoteFilter(["USD", "USDT"]).apply(ps)] == ["A-USD", "AUSDT"]


def test_stablecoin_and_fiat_bases_are_dropped():
    ps = [product(f"{b}-USD", b, "USD") for b in ("USDT", "DAI", "PYUSD", "EURC", "EUR", "GBP", "BTC")]
    assert [p.base for p in StablecoinBaseFilter().apply(ps)] == ["BTC"]
    assert {"USDT", "USDC", "DAI", "BUSD", "TUSD", "USDP", "FDUSD", "PYUSD", "EURC", "GUSD"} <= STABLECOINS


def test_keyspace_filter_drops_unsafe_symbols():
    ps = [product("BTC-USD", "BTC", "USD"), product("BAD:USD", "BAD", "USD"), product("A B", "A", "USD"),
          product("X*USD", "X", "USD")]
    assert [p.symbol for p in KeyspaceFilter().apply(ps)] == ["BTC-USD"]


@pytest.mark.parametrize("qv", [0.0, -5.0, math.nan, math.inf])
def test_min_volume_filter_drops_zero_negative_and_non_finite(qv):
    assert MinVolumeFilter().apply([product("A-USD", "A", "USD", qv=qv, price=1.0)]) == []


def test_min_volume_threshold():
    ps = [product("A-USD", "A", "USD", qv=99.0), product("B-USD", "B", "USD", qv=100.0)]
    assert [p.symbol for p in MinVolumeFilter(100.0).apply(ps)] == ["B-USD"]


def test_usd_volume_is_zero_for_non_dollar_quotes():
    assert usd_volume(product("A-EUR", "A", "EUR", qv=500.0)) == 0.0
    assert usd_volume(product("AUSDT", "A", "USDT", qv=500.0)) == 500.0


def test_alias_counted_once_only_when_twin_is_listed():
    usd = product("BTC-USD", "BTC", "USD")
    alias = product("BTC-USDC", "BTC", "USDC", alias_of="BTC-USD")
    lonely = product("ETH-USDC", "ETH", "USDC", alias_of="ETH-USD")
    assert AliasFilter().apply([usd, alias, lonely]) == [usd, lonely]


def test_one_per_base_keeps_highest_volume_quote():
    ps = [product("BTCUSDT", "BTC", "USDT", qv=10.0), product("BTCUSDC", "BTC", "USDC", qv=5.0),
          product("ETHUSDT", "ETH", "USDT", qv=1.0)]
    assert [p.symbol for p in OnePerBaseFilter().apply(ps)] == ["BTCUSDT", "ETHUSDT"]


def test_rank_orders_by_usd_volume_ties_by_symbol_and_cuts_top_n():
    ps = [product("B-USD", "B", "USD", qv=5.0), product("A-USD", "A", "USD", qv=5.0),
          product("C-USDT", "C", "USDT", qv=9.0)]
    result = rank_products(ps, RankingConfig(top_n=2))
    assert [(s.rank, s.symbol) for s in result.ranked] == [(1, "C-USDT"), (2, "A-USD")]
    assert result.dropped["below_top_n"] == 1


def test_rank_coinbase_recording(coinbase_products):
    result = rank_products(coinbase_products, RankingConfig(top_n=50))
    symbols = [s.symbol for s in result.ranked]
    assert len(symbols) == 50 == len(set(symbols))
    assert symbols[:2] == ["BTC-USD", "ETH-USD"]  # the -USDC aliases did not take a slot
    assert not any(s.endswith("-USDC") and s.replace("-USDC", "-USD") in symbols for s in symbols)
    by_symbol = {p.symbol: p for p in coinbase_products}
    for s in result.ranked:
        p = by_symbol[s.symbol]
        assert p.tradable and p.status == "online"
        assert p.quote in ("USD", "USDC", "USDT") and p.base not in STABLECOINS
    volumes = [s.volume_24h_usd for s in result.ranked]
    assert volumes == sorted(volumes, reverse=True) and volumes[-1] > 0
    assert result.dropped["alias_duplicate"] > 0 and result.dropped["quote_not_allowed"] > 0
    assert result.considered == len(coinbase_products)


def test_rank_coinbase_recording_excludes_stablecoin_pairs(coinbase_products):
    symbols = {s.symbol for s in rank_products(coinbase_products, RankingConfig(top_n=1000)).ranked}
    assert "USDT-USD" not in symbols and "DAI-USD" not in symbols
    delisted = {p.symbol for p in coinbase_products if p.status == "delisted"}
    assert delisted and not (symbols & delisted)


@pytest.mark.parametrize(("cfg", "says"), [
    (RankingConfig(top_n=0), "top_n"),
    (RankingConfig(top_n=5000), "top_n"),
    (RankingConfig(top_n=True), "top_n"),
    (RankingConfig(quotes=()), "quotes"),
    (RankingConfig(quotes=("EUR",)), "quotes"),
    (RankingConfig(min_volume_usd=-1.0), "min_volume_usd"),
    (RankingConfig(min_volume_usd=math.nan), "min_volume_usd"),
    (RankingConfig(extra_stablecoins=("",)), "extra_stablecoins"),
])
def test_bad_config_names_the_setting(cfg, says):
    with pytest.raises(RankingConfigError, match=says):
        rank_products([], cfg)


def test_config_from_mapping_rejects_unknown_keys_and_applies_extras():
    with pytest.raises(RankingConfigError, match="topn"):
        RankingConfig.from_mapping({"topn": 3})
    cfg = RankingConfig.from_mapping({"top_n": 3, "extra_stablecoins": ["btc"]})
    ps = [product("BTC-USD", "BTC", "USD", qv=9.0), product("ETH-USD", "ETH", "USD", qv=1.0)]
    assert [s.symbol for s in rank_products(ps, cfg).ranked] == ["ETH-USD"]
