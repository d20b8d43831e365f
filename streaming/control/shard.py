"""`--shard K/N`: a stable share of an exchange's universe for one of N workers.

The owner of a symbol is crc32("exchange:symbol") mod N: the same on every host, Python
version and restart (Python's hash() is salted per process, so it cannot be used).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from streaming.errors import shown

_SHARD_RE = re.compile(r"^\s*(\d{1,4})\s*/\s*(\d{1,4})\s*$")


class InvalidShard(ValueError):
    pass


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, exchange: str, symbol: str) -> bool:
        return shard_of(exchange, symbol, self.count) == self.index

    def select(self, exchange: str, symbols: Iterable[str]) -> list[str]:
        return [s for s in symbols if self.owns(exchange, s)]


def shard_of(exchange: str, symbol: str, count: int) -> int:
    """The 1-based shard that serves `symbol` of `exchange` among `count` shards."""
    return zlib.crc32(f"{exchange}:{symbol}".encode()) % count + 1


def parse_shard(text: str) -> Shard:
    m = _SHARD_RE.match(text or "")
    if not m:
        raise InvalidShard(f"invalid shard {shown(text)}: use K/N, e.g. 1/3 for the first of three workers")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 1 <= index <= count:
        raise InvalidShard(f"invalid shard {shown(text)}: K must be between 1 and N (N >= 1)")
    return Shard(index, count)
