"""Tier 2 valuation: a user's balances priced in USD from the exchange's products (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from livermore_pipelines.ranking import FIAT, STABLECOINS, TradableFilter
from streaming.models import Balance, ProductStats

# Which market prices an asset, best first: USD is the real dollar, the others ~ $1.
QUOTE_PREFERENCE: tuple[str, ...] = ("USD", "USDC", "USDT")
DEFAULT_MIN_VALUE_USD = 2.0


@dataclass(frozen=True)
class Holding:
    asset: str
    symbol: str  # the product streamed for it (BTC-USD, BTCUSDT)
    quantity: float
    price: float
    value_usd: float


@dataclass
class Valuation:
    holdings: list[Holding] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # asset -> reason


def _finite_positive(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def usd_markets(products: Iterable[ProductStats]) -> dict[str, ProductStats]:
    """Base asset -> the tradable product that prices it in dollars (USD before USDC before USDT)."""
    tradable = TradableFilter()
    best: dict[str, tuple[int, ProductStats]] = {}
    for p in products:
        quote = p.quote.upper()
        if quote not in QUOTE_PREFERENCE or not tradable.keep(p) or not _finite_positive(p.price):
            continue
        # an alias (BTC-USDC -> BTC-USD) ranks after the product it aliases
        score = QUOTE_PREFERENCE.index(quote) * 2 + (1 if p.alias_of else 0)
        base = p.base.upper()
        if base not in best or score < best[base][0]:
            best[base] = (score, p)
    return {base: p for base, (_, p) in best.items()}


def value_balances(
    balances: Sequence[Balance],
    products: Iterable[ProductStats],
    min_value_usd: float = DEFAULT_MIN_VALUE_USD,
    excluded_assets: Iterable[str] = (),
) -> Valuation:
    """Holdings worth at least `min_value_usd`, largest first; every other asset gets a reason."""
    if not isinstance(min_value_usd, (int, float)) or not math.isfinite(min_value_usd) or min_value_usd < 0:
        raise ValueError(f"min_value_usd={min_value_usd!r} is invalid; set it to a number >= 0 (US dollars)")
    markets = usd_markets(products)
    never = FIAT | STABLECOINS | {a.upper() for a in excluded_assets}
    out = Valuation()
    quantities: dict[str, float] = {}
    for b in balances:
        asset = b.asset.upper()
        qty = b.total
        if not (isinstance(qty, (int, float)) and math.isfinite(qty)):
            out.skipped[asset] = "quantity is not a number"
            continue
        # one asset may come in several accounts/wallets: add them up
        quantities[asset] = quantities.get(asset, 0.0) + qty
    for asset, qty in quantities.items():
        if asset in never:
            out.skipped[asset] = "fiat or stablecoin"
        elif qty <= 0:
            out.skipped[asset] = "zero balance"
        elif asset not in markets:
            out.skipped[asset] = "no tradable USD/USDC/USDT market"
        else:
            p = markets[asset]
            value = qty * p.price
            if value < min_value_usd:
                out.skipped[asset] = f"worth ${value:.2f} < ${min_value_usd:.2f}"
            else:
                out.holdings.append(Holding(asset=asset, symbol=p.symbol, quantity=qty, price=p.price,
                                            value_usd=value))
    out.holdings.sort(key=lambda h: (-h.value_usd, h.asset))
    return out
