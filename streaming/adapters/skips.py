"""Counted, rate-limited reporting of frames (or parts of frames) that were skipped.

A malformed frame must never crash a connection nor flood the log: every skip is counted per
kind (exposed in `stats()`), and at most one log line per kind is written per interval.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from streaming.ratelog import RateLimitedLog

# Kinds of skips; parsers raise BadFrame with one of these.
INVALID_JSON = "invalid_json"  # also invalid UTF-8
TOO_DEEP = "too_deep"  # nested deeper than any real frame (a decoder would recurse without end)
OVERSIZED = "oversized"
SCHEMA = "schema"  # missing field or wrong type
BAD_NUMBER = "bad_number"  # not a number
NON_FINITE = "non_finite"  # NaN / inf
BAD_PRICE = "bad_price"  # zero or negative price, negative volume
HIGH_LOW = "high_below_low"
INCONSISTENT = "inconsistent"  # open or close outside [low, high]
ABSURD = "absurd_value"  # a price or volume no market has (it would overflow sums downstream)
BAD_TIMESTAMP = "bad_timestamp"  # absurd or misaligned open time
UNKNOWN_SYMBOL = "unknown_symbol"  # a symbol we did not subscribe
UNKNOWN_INTERVAL = "unknown_interval"
EXCHANGE_ERROR = "exchange_error"  # an error frame from the exchange

KINDS = (INVALID_JSON, TOO_DEEP, OVERSIZED, SCHEMA, BAD_NUMBER, NON_FINITE, BAD_PRICE, HIGH_LOW, INCONSISTENT,
         ABSURD, BAD_TIMESTAMP, UNKNOWN_SYMBOL, UNKNOWN_INTERVAL, EXCHANGE_ERROR)


class BadFrame(ValueError):
    """A frame or a candle in it that cannot be used; `kind` is one of KINDS."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class SkipCounter:
    """Counts skips per kind and logs at most one line per kind every `log_interval` seconds."""

    def __init__(self, logger: logging.Logger, context: str, log_interval: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[str] = Counter()
        self._context = context
        self._log = RateLimitedLog(logger, log_interval, clock)

    def skip(self, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        # detail is truncated: a hostile frame must not blow up the log
        self._log.warning(kind, "%s: skipped %s frame: %s", self._context, kind, detail[:200])

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())
