"""Exchange partitions: the symbol assets are computed per exchange."""

from __future__ import annotations

import dagster as dg

EXCHANGE_NAMES: tuple[str, ...] = ("coinbase", "binance", "binance_us")

exchange_partitions = dg.StaticPartitionsDefinition(list(EXCHANGE_NAMES))
