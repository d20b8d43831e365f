"""Worker-health logic: which exchanges lost their worker, and restart cooldown."""

from livermore_pipelines.health import due_for_restart, orphaned_exchanges


def test_running_exchange_without_live_worker_is_orphaned():
    statuses = {"coinbase": {"connection_state": "connected"}, "binance": {"connection_state": "connecting"},
                "binance_us": {"connection_state": "idle"}}
    assert orphaned_exchanges(statuses, []) == ["binance", "coinbase"]


def test_exchange_served_by_a_live_worker_is_not_orphaned():
    statuses = {"coinbase": {"connection_state": "connected"}, "binance": {"connection_state": "connected"}}
    workers = [{"worker_id": "w1", "exchanges": {"coinbase": "connected"}}, {"worker_id": "w2", "exchanges": None}]
    assert orphaned_exchanges(statuses, workers) == ["binance"]


def test_stopped_or_errored_exchanges_are_left_alone():
    statuses = {"coinbase": {"connection_state": "disconnected"}, "binance": {"connection_state": "error"},
                "binance_us": {}}
    assert orphaned_exchanges(statuses, []) == []


def test_restart_cooldown():
    assert due_for_restart(["a", "b"], {"a": 100.0}, now=150.0, cooldown_s=120.0) == ["b"]
    assert due_for_restart(["a", "b"], {"a": 100.0}, now=220.0, cooldown_s=120.0) == ["a", "b"]
