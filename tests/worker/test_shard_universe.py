"""Shards and the universe selection (pure)."""

from __future__ import annotations

import zlib

import orjson
import pytest

from streaming.control.shard import InvalidShard, Shard, parse_shard, shard_of
from streaming.worker.universe import (
    UniverseError,
    diff_pools,
    explicit_pools,
    parse_universe,
    select_pools,
)

SYMBOLS = [f"S{i}-USD" for i in range(1000)]


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_split_disjointly_and_completely(n):
    shares = [Shard(k, n).select("coinbase", SYMBOLS) for k in range(1, n + 1)]
    flat = [s for share in shares for s in share]
    assert sorted(flat) == sorted(SYMBOLS)  # complete, and no symbol twice
    assert len(set(flat)) == len(flat)
    if n > 1:  # roughly even
        assert min(len(s) for s in shares) > 1000 / n * 0.7


def test_shard_is_a_stable_crc32_not_python_hash():
    assert shard_of("coinbase", "BTC-USD", 5) == zlib.crc32(b"coinbase:BTC-USD") % 5 + 1
    # the exchange takes part: the same symbol may land elsewhere on another exchange
    assert {shard_of(ex, "BTC-USD", 97) for ex in ("coinbase", "binance", "binance_us")} != {1}


@pytest.mark.parametrize("text", ["", "1", "0/3", "4/3", "1/0", "a/b", "-1/2", "1/2/3"])
def test_bad_shards(text):
    with pytest.raises(InvalidShard):
        parse_shard(text)


def test_parse_shard():
    assert parse_shard(" 2 / 3 ") == Shard(2, 3) and Shard(2, 3).label == "2/3"


def universe(*entries):
    return orjson.dumps({"exchange_id": 1, "exchange": "coinbase", "updated_at": "2026-01-01T00:00:00Z",
                         "symbols": list(entries)})


BTC = {"symbol": "BTC-USD", "tier": 1, "pool": "shared", "users": []}
FOO = {"symbol": "FOO-USD", "tier": 2, "pool": "user", "users": [7, 9]}
BAR = {"symbol": "BAR-USD", "tier": 2, "pool": "user", "users": [9]}


def test_select_all_pools_without_a_user():
    u = parse_universe(universe(BTC, FOO, BAR))
    assert select_pools(u, exchange="coinbase") == {"BTC-USD": (), "FOO-USD": (7, 9), "BAR-USD": (9,)}


def test_select_for_a_user_adds_its_positions():
    u = parse_universe(universe(BTC, FOO, BAR))
    got = select_pools(u, exchange="coinbase", user=7, extra_user_symbols=["ZED-USD", "BTC-USD"])
    assert got == {"BTC-USD": (), "FOO-USD": (7,), "ZED-USD": (7,)}


def test_select_with_a_shard():
    u = parse_universe(universe(*({"symbol": s} for s in SYMBOLS[:50])))
    halves = [select_pools(u, exchange="coinbase", shard=Shard(k, 2)) for k in (1, 2)]
    assert set(halves[0]) | set(halves[1]) == set(SYMBOLS[:50]) and not set(halves[0]) & set(halves[1])
    assert explicit_pools(SYMBOLS[:50], exchange="coinbase", shard=Shard(1, 2)) == halves[0]


def test_malformed_entries_are_skipped_and_reported():
    u = parse_universe(universe(BTC, {"symbol": "a:b"}, {"symbol": "X-USD", "pool": "user"}, "junk",
                                {"symbol": "Y-USD", "users": [True]}, {"symbol": "Z-USD", "tier": 3}, BTC))
    assert [e.symbol for e in u.entries] == ["BTC-USD"]
    assert len(u.rejected) == 5


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"symbols": 3}', b"null"])
def test_unusable_universe(raw):
    with pytest.raises(UniverseError) as err:
        parse_universe(raw)
    assert "materialize symbol_universe" in str(err.value)


def test_diff():
    d = diff_pools({"A": (), "B": (), "C": (1,)}, {"B": (), "C": (1, 2), "D": ()})
    assert (d.added, d.removed, d.moved) == (("D",), ("A",), ("C",)) and not d.empty
    assert diff_pools({"A": ()}, {"A": ()}).empty
