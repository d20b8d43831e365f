"""Wall-clock ISO-8601 UTC timestamps with milliseconds, as written into Redis records.

Heartbeats, status hashes and command responses all use this one format; readers parse it
with datetime.fromisoformat.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_iso(at: datetime | float | None = None) -> str:
    """`at` (an aware datetime or epoch seconds; default now) as 2026-08-09T21:05:48.123+00:00."""
    if not isinstance(at, datetime):
        at = datetime.fromtimestamp(at if at is not None else time.time(), UTC)
    return at.isoformat(timespec="milliseconds")


def parse_utc_iso(value: str | None) -> datetime | None:
    """An aware datetime from an ISO-8601 text; None for empty, unparsable or zone-less values."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
