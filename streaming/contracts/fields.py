"""Constrained field types the messages share: each says what a valid value is, once.

msgspec checks these constraints when it decodes or converts (not when a Struct is built in
Python, so writers pay nothing); the `description` is what the reference page (docs/keyspace.md)
says about a field of that type.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from streaming.timeframes import TIMEFRAMES

# Safe in key names: ':' separates key fields, '*?[' are glob characters for SCAN/PSUBSCRIBE,
# whitespace breaks CLI tools. streaming.keys.validate_symbol enforces the same at the adapters.
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$"
EXCHANGE_NAME_PATTERN = r"^[a-z0-9_]{1,32}$"
COMMAND_ID_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
TARGET_PATTERN = r"^(\*|shard:\d{1,4}/\d{1,4}|[A-Za-z0-9._:-]{1,200})$"
TIMEFRAME_PATTERN = "^(" + "|".join(TIMEFRAMES) + ")$"
# utc_iso() writes 2026-08-09T21:05:48.123+00:00; readers accept any ISO 8601 time with a zone
ISO_TIME_PATTERN = r"^\d{4}-\d\d-\d\dT\d\d:\d\d"

MAX_INT64 = 2**63 - 1
MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

Symbol = Annotated[str, Meta(
    pattern=SYMBOL_PATTERN,
    description="the exchange's own symbol (BTC-USD, BTCUSDT): letters, digits and . _ / -, at most 40")]
ExchangeId = Annotated[int, Meta(gt=0, le=MAX_INT64, description="id of the exchange in the exchanges table")]
ExchangeName = Annotated[str, Meta(
    pattern=EXCHANGE_NAME_PATTERN, description="exchange name: lower-case letters, digits and _")]
UserId = Annotated[int, Meta(gt=0, le=MAX_INT64, description="a users.id")]
Timeframe = Annotated[str, Meta(pattern=TIMEFRAME_PATTERN, description="one of " + ", ".join(TIMEFRAMES))]
EpochMs = Annotated[int, Meta(ge=0, le=MAX_EPOCH_MS, description="epoch milliseconds, UTC")]
OpenTime = Annotated[int, Meta(ge=0, le=MAX_EPOCH_MS, description="open time of the bar, epoch ms, UTC")]
IsoTime = Annotated[str, Meta(pattern=ISO_TIME_PATTERN, description="ISO 8601 time with its zone (UTC)")]
CommandId = Annotated[str, Meta(pattern=COMMAND_ID_PATTERN, description="1-64 of letters, digits and . _ -")]
Target = Annotated[str, Meta(
    pattern=TARGET_PATTERN, description="`*` (every worker), a worker id, or `shard:K/N`")]
WorkerId = Annotated[str, Meta(
    min_length=1, max_length=200, description="the worker's --worker-id (default host:pid)")]
