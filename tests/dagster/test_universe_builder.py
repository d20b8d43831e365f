"""Universe building (dedupe, pools) and the asset-check logic, passing and failing."""

from livermore_pipelines.universe_builder import (
    DEFAULT_COINBASE_MAX_SYMBOLS,
    UniverseEntry,
    build_universe,
    check_no_duplicates,
    check_not_empty,
    check_stream_limits,
    max_symbols,
    universe_document,
)
from streaming.db.seed import EXCHANGES

LIMITS = {row["name"]: row["api_limits"] for row in EXCHANGES}


def test_tier2_symbol_in_tier1_uses_shared_pool_others_user_pool():
    entries = build_universe(["BTC-USD", "ETH-USD"], [(7, "ETH-USD"), (7, "FOO-USD"), (9, "FOO-USD"),
                                                       (9, "BAR-USD"), (7, "FOO-USD")])
    assert [e.to_json() for e in entries] == [
        {"symbol": "BTC-USD", "tier": 1, "pool": "shared", "users": []},
        {"symbol": "ETH-USD", "tier": 1, "pool": "shared", "users": [7]},
        {"symbol": "BAR-USD", "tier": 2, "pool": "user", "users": [9]},
        {"symbol": "FOO-USD", "tier": 2, "pool": "user", "users": [7, 9]},
    ]


def test_duplicate_tier1_symbols_collapse():
    assert [e.symbol for e in build_universe(["A", "B", "A"], [])] == ["A", "B"]


def test_document_shape_matches_contract_a():
    doc = universe_document(1, "coinbase", "2026-01-01T00:00:00+00:00", build_universe(["A-USD"], [(3, "B-USD")]))
    assert doc == {"exchange_id": 1, "exchange": "coinbase", "updated_at": "2026-01-01T00:00:00+00:00",
                   "symbols": [{"symbol": "A-USD", "tier": 1, "pool": "shared", "users": []},
                               {"symbol": "B-USD", "tier": 2, "pool": "user", "users": [3]}]}


def test_not_empty_check():
    assert not check_not_empty([]).passed
    assert "empty" in check_not_empty([]).description
    assert check_not_empty(build_universe(["A"], [])).passed


def test_no_duplicates_check_fails_on_duplicates():
    dup = [UniverseEntry("A", 1, "shared", ()), UniverseEntry("A", 2, "user", (1,))]
    outcome = check_no_duplicates(dup)
    assert not outcome.passed and "A" in outcome.description and outcome.metadata["duplicates"] == 1
    assert check_no_duplicates(dup[:1]).passed


def test_stream_limits_from_seeded_api_limits():
    assert max_symbols("binance", LIMITS["binance"]) == 1024 * 5 // 5
    assert max_symbols("coinbase", LIMITS["coinbase"]) == DEFAULT_COINBASE_MAX_SYMBOLS
    assert max_symbols("binance", {"ws_streams_per_connection": 10, "ws_max_connections": 2}) == 4
    assert max_symbols("coinbase", {"ws_max_symbols": 3}) == 3


def test_stream_limit_check_fails_when_exceeded():
    entries = build_universe([f"S{i}" for i in range(5)], [])
    outcome = check_stream_limits(entries, "binance", {"ws_streams_per_connection": 10, "ws_max_connections": 2})
    assert not outcome.passed
    assert outcome.metadata == {"symbols": 5, "max_symbols": 4} and "top_n" in outcome.description
    assert check_stream_limits(entries, "coinbase", LIMITS["coinbase"]).passed
