"""The command wire format: parsing, validation, expiry, targets (pure)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming.control.commands import (
    CommandError,
    CommandExpired,
    is_for,
    make_command,
    parse_command,
)

NOW = 1_700_000_000_000


def test_round_trip_through_stream_fields():
    cmd = make_command("start", now_ms=NOW, exchange="coinbase", user=7, symbols=["BTC-USD", "ETH-USD"],
                       target="shard:1/2", ttl_ms=5000, command_id="abc")
    fields = cmd.to_fields()
    assert fields == {"id": "abc", "command": "start", "exchange": "coinbase", "user": "7",
                      "symbols": "BTC-USD,ETH-USD", "sent_at": str(NOW), "expires_at": str(NOW + 5000),
                      "target": "shard:1/2"}
    assert parse_command(fields, now_ms=NOW + 4999) == cmd


def test_json_body_and_iso_times_are_accepted():
    body = {"command": "stop", "exchange": "binance", "sent_at": "2023-11-14T22:13:20Z",
            "expires_at": "2023-11-14T22:14:20+00:00", "symbols": ["BTCUSDT"]}
    cmd = parse_command({"id": "j1", "json": orjson.dumps(body).decode()}, now_ms=NOW + 1000)
    assert (cmd.verb, cmd.exchange, cmd.symbols, cmd.sent_at_ms, cmd.expires_at_ms) == (
        "stop", "binance", ("BTCUSDT",), NOW, NOW + 60_000)


def test_default_ttl_from_the_stream_entry_time():
    cmd = parse_command({"id": "x", "command": "status"}, now_ms=NOW, entry_id=f"{NOW - 59_000}-0")
    assert cmd.expires_at_ms == NOW + 1000
    with pytest.raises(CommandExpired) as err:
        parse_command({"id": "x", "command": "status"}, now_ms=NOW, entry_id=f"{NOW - 61_000}-3")
    assert err.value.command_id == "x" and err.value.reason.startswith("expired")


def test_expired_error_carries_the_target():
    with pytest.raises(CommandExpired) as err:
        parse_command({"id": "x", "command": "status", "expires_at": str(NOW - 1), "target": "w1"}, now_ms=NOW)
    assert err.value.target == "w1"


@pytest.mark.parametrize(("fields", "answerable", "text"), [
    ({}, False, "missing or invalid id"),
    ({"id": "has space", "command": "status"}, False, "invalid id"),
    ({"id": "x" * 65, "command": "status"}, False, "invalid id"),
    ({"json": "{}"}, False, "invalid id"),
    ({"id": "a", "json": "[1, 2]"}, True, "must be an object"),
    ({"id": "a", "json": "{"}, True, "invalid JSON"),
    ({"id": "a", "command": ""}, True, "missing field 'command'"),
    ({"id": "a", "command": "rm -rf"}, True, "unknown command"),
    ({"id": "a", "command": "reload-symbols"}, True, "needs an exchange"),
    ({"id": "a", "command": "stop", "exchange": "x:y"}, True, "invalid exchange name"),
    ({"id": "a", "command": "stop", "user": "0"}, True, "positive integer"),
    ({"id": "a", "command": "stop", "user": "-3"}, True, "positive integer"),
    ({"id": "a", "command": "stop", "symbols": "BTC USD"}, True, "rejected"),
    ({"id": "a", "command": "stop", "target": "*,x y"}, True, "invalid target"),
    ({"id": "a", "command": "stop", "sent_at": "yesterday"}, True, "sent_at must be"),
    ({"id": "a", "command": "stop", "sent_at": "2023-11-14T22:13:20"}, True, "with a zone"),
])
def test_bad_commands_raise_a_specific_error(fields, answerable, text):
    with pytest.raises(CommandError) as err:
        parse_command(fields, now_ms=NOW)
    assert (err.value.command_id is not None) == answerable
    assert text in err.value.reason


@pytest.mark.parametrize(("body", "text"), [
    ('{"command": "start", "exchange": 5}', "invalid exchange"),
    ('{"command": "start", "exchange": "coinbase", "user": true}', "user must be"),
    ('{"command": "start", "exchange": "coinbase", "symbols": {"a": 1}}', "comma-separated"),
    ('{"command": "status", "expires_at": true}', "boolean"),
    ('{"command": "status", "expires_at": 1e300}', "expires_at must be"),
    ('{"command": "status", "target": 3}', "invalid target"),
])
def test_json_body_type_errors(body, text):
    with pytest.raises(CommandError) as err:
        parse_command({"id": "j", "json": body}, now_ms=NOW)
    assert text in err.value.reason


def test_targets():
    assert is_for("*", "w1", None) and is_for("", "w1", "1/2")
    assert is_for("w1", "w1", None) and not is_for("w2", "w1", None)
    assert is_for("shard:1/2", "w1", "1/2") and not is_for("shard:2/2", "w1", "1/2")
    assert not is_for("shard:1/2", "w1", None)


@given(st.dictionaries(st.sampled_from(["id", "command", "exchange", "user", "symbols", "sent_at", "expires_at",
                                        "target", "json"]), st.text(max_size=30)))
def test_arbitrary_fields_never_raise_anything_but_command_error(fields):
    try:
        cmd = parse_command(fields, now_ms=NOW)
    except CommandError as exc:
        assert exc.reason
    else:
        assert cmd.verb in ("start", "stop", "status", "reload-symbols")
