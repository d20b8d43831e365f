"""Tier 1 ranking: a chain of product filters, then top N by 24 h USD volume (pure, no I/O).

Freqtrade-pairlist style: each filter is one small class that keeps or drops products and says
why; `build_filters` turns a plain config into the chain and rejects bad config with a message
that names the setting to change.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from streaming.keys import InvalidSymbol, validate_symbol
from streaming.models import ProductStats

# Quote currencies whose volume counts as US dollars one for one.
USD_QUOTES: frozenset[str] = frozenset({"USD", "USDC", "USDT"})

# Stablecoins and fiat-backed tokens: their price barely moves, so MACD-V on them is noise.
STABLECOINS: frozenset[str] = frozenset({
    "USDT", "USDC", "DAI", "BUSD", "TUSD", "USDP", "FDUSD", "PYUSD", "EURC", "GUSD", "PAX", "USDD",
    "USDS", "USDE", "FRAX", "LUSD", "SUSD", "UST", "USTC", "EURT", "EURS", "AEUR", "XSGD", "USD1",
    "RLUSD", "USDG", "GHO", "CRVUSD", "USDX", "USDJ", "USDK", "HUSD", "USDN", "CUSD", "MUSD",
    "BIDR", "IDRT", "BVND", "TRYB", "ZUSD", "USDB",
})

FIAT: frozenset[str] = frozenset({
    "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "SGD", "INR", "TRY", "BRL", "RUB", "UAH",
    "NGN", "ZAR", "MXN", "ARS", "PLN", "RON", "CZK", "KRW", "HKD", "NZD", "SEK", "NOK", "DKK",
})

MAX_TOP_N = 1000


class RankingConfigError(ValueError):
    """Bad ranking config; the message names the setting and what to set it to."""


@dataclass(frozen=True)
class RankedSymbol:
    rank: int
    symbol: str
    base: str
    quote: str
    price: float
    volume_24h_quote: float
    volume_24h_usd: float


@dataclass
class RankingResult:
    ranked: list[RankedSymbol]
    # filter name -> number of products it dropped
    dropped: Counter[str] = field(default_factory=Counter)
    considered: int = 0


def usd_volume(p: ProductStats) -> float:
    """24 h volume in USD: quote volume when the quote is a dollar (USD, USDC, USDT ~ $1), else 0."""
    if p.quote.upper() not in USD_QUOTES:
        return 0.0
    v = p.quote_volume_24h
    if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        return 0.0
    return float(v)


class ProductFilter:
    """Keeps the products `keep` says yes to. Subclasses set `name` and implement `keep`."""

    name: ClassVar[str] = "filter"

    def keep(self, p: ProductStats) -> bool:
        raise NotImplementedError

    def apply(self, products: Sequence[ProductStats]) -> list[ProductStats]:
        return [p for p in products if self.keep(p)]


class TradableFilter(ProductFilter):
    """Drops delisted, disabled and otherwise not-online products."""

    name = "not_tradable"

    def keep(self, p: ProductStats) -> bool:
        return bool(p.tradable) and p.status.lower() not in ("delisted", "offline", "disabled", "halt", "break")


class QuoteFilter(ProductFilter):
    name = "quote_not_allowed"

    def __init__(self, quotes: Iterable[str]) -> None:
        self.quotes = frozenset(q.upper() for q in quotes)

    def keep(self, p: ProductStats) -> bool:
        return p.quote.upper() in self.quotes


class StablecoinBaseFilter(ProductFilter):
    name = "stablecoin_base"

    def __init__(self, stablecoins: Iterable[str] = STABLECOINS) -> None:
        self.stablecoins = frozenset(s.upper() for s in stablecoins)

    def keep(self, p: ProductStats) -> bool:
        base = p.base.upper()
        return base not in self.stablecoins and base not in FIAT


class KeyspaceFilter(ProductFilter):
    """Drops symbols that could break the Redis keyspace (':' '*' spaces...)."""

    name = "invalid_symbol"

    def keep(self, p: ProductStats) -> bool:
        try:
            validate_symbol(p.symbol)
        except InvalidSymbol:
            return False
        return True


class MinVolumeFilter(ProductFilter):
    """Drops products without a positive, finite USD volume of at least `min_volume_usd`."""

    name = "low_volume"

    def __init__(self, min_volume_usd: float = 0.0) -> None:
        self.min_volume_usd = min_volume_usd

    def keep(self, p: ProductStats) -> bool:
        v = usd_volume(p)
        return v > 0 and v >= self.min_volume_usd


class AliasFilter(ProductFilter):
    """Counts Coinbase -USDC aliases of a -USD product once: the alias goes when its twin is listed."""

    name = "alias_duplicate"

    def apply(self, products: Sequence[ProductStats]) -> list[ProductStats]:
        listed = {p.symbol for p in products}
        return [p for p in products if not (p.alias_of and p.alias_of in listed)]


class OnePerBaseFilter(ProductFilter):
    """Optional: keep only the highest-volume quote of each base asset (BTCUSDT over BTCUSDC)."""

    name = "same_base"

    def apply(self, products: Sequence[ProductStats]) -> list[ProductStats]:
        best: dict[str, ProductStats] = {}
        for p in products:
            cur = best.get(p.base.upper())
            if cur is None or (usd_volume(p), p.symbol) > (usd_volume(cur), cur.symbol):
                best[p.base.upper()] = p
        chosen = {id(p) for p in best.values()}
        return [p for p in products if id(p) in chosen]


@dataclass(frozen=True)
class RankingConfig:
    top_n: int = 50
    quotes: tuple[str, ...] = ("USD", "USDC", "USDT")
    min_volume_usd: float = 0.0
    extra_stablecoins: tuple[str, ...] = ()
    one_per_base: bool = False

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RankingConfig:
        unknown = set(raw) - {"top_n", "quotes", "min_volume_usd", "extra_stablecoins", "one_per_base"}
        if unknown:
            raise RankingConfigError(
                f"unknown ranking setting(s) {', '.join(sorted(unknown))}; allowed: top_n, quotes, "
                "min_volume_usd, extra_stablecoins, one_per_base")
        return cls(
            top_n=raw.get("top_n", 50),
            quotes=tuple(raw.get("quotes", ("USD", "USDC", "USDT"))),
            min_volume_usd=raw.get("min_volume_usd", 0.0),
            extra_stablecoins=tuple(raw.get("extra_stablecoins", ())),
            one_per_base=raw.get("one_per_base", False),
        )


def validate_config(cfg: RankingConfig) -> RankingConfig:
    if isinstance(cfg.top_n, bool) or not isinstance(cfg.top_n, int) or not 1 <= cfg.top_n <= MAX_TOP_N:
        raise RankingConfigError(f"top_n={cfg.top_n!r} is invalid; set top_n to a whole number from 1 to {MAX_TOP_N}")
    if not cfg.quotes:
        raise RankingConfigError("quotes is empty; set quotes to some of USD, USDC, USDT")
    bad = [q for q in cfg.quotes if not isinstance(q, str) or q.upper() not in USD_QUOTES]
    if bad:
        raise RankingConfigError(
            f"quotes {bad!r} cannot be valued in USD; set quotes to a subset of {', '.join(sorted(USD_QUOTES))}")
    v = cfg.min_volume_usd
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise RankingConfigError(f"min_volume_usd={v!r} is invalid; set it to a number >= 0 (US dollars)")
    if any(not isinstance(s, str) or not s.strip() for s in cfg.extra_stablecoins):
        raise RankingConfigError("extra_stablecoins must be a list of asset codes such as ['USDX']")
    return cfg


def build_filters(cfg: RankingConfig) -> list[ProductFilter]:
    validate_config(cfg)
    filters: list[ProductFilter] = [
        TradableFilter(),
        QuoteFilter(cfg.quotes),
        StablecoinBaseFilter(STABLECOINS | {s.upper() for s in cfg.extra_stablecoins}),
        KeyspaceFilter(),
        MinVolumeFilter(cfg.min_volume_usd),
        AliasFilter(),
    ]
    if cfg.one_per_base:
        filters.append(OnePerBaseFilter())
    return filters


def rank_products(products: Sequence[ProductStats], cfg: RankingConfig | None = None) -> RankingResult:
    """Top `cfg.top_n` products by USD volume after every filter; ties broken by symbol."""
    cfg = cfg or RankingConfig()
    result = RankingResult(ranked=[], considered=len(products))
    kept = list(products)
    for f in build_filters(cfg):
        before = len(kept)
        kept = f.apply(kept)
        if before != len(kept):
            result.dropped[f.name] += before - len(kept)
    kept.sort(key=lambda p: (-usd_volume(p), p.symbol))
    if len(kept) > cfg.top_n:
        result.dropped["below_top_n"] += len(kept) - cfg.top_n
    result.ranked = [
        RankedSymbol(rank=i + 1, symbol=p.symbol, base=p.base, quote=p.quote, price=float(p.price),
                     volume_24h_quote=float(p.quote_volume_24h), volume_24h_usd=usd_volume(p))
        for i, p in enumerate(kept[: cfg.top_n])
    ]
    return result
