"""Property-based fuzz of the command decoder: whatever an entry of worker:commands holds (any bytes,
invalid UTF-8, huge numbers, deep JSON, wrong types), decoding gives a valid Command or a
CommandError with a one-line reason, and nothing else."""

from __future__ import annotations

import re

import msgspec
import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streaming.contracts.commands import VERBS, Command, CommandError, decode_command_entry
from streaming.contracts.fields import COMMAND_ID_PATTERN

NOW = 1_700_000_000_000
NAMES = ["id", "command", "exchange", "user", "symbols", "sent_at", "expires_at", "target", "json"]

huge_ints = st.one_of(st.integers(), st.integers(min_value=2**63 - 10, max_value=2**70),
                      st.integers(max_value=-(2**63) + 10, min_value=-(2**70)))
plausible_text = st.one_of(
    st.sampled_from([*VERBS, "coinbase", "binance", "BTC-USD,ETH-USD", "*", "shard:1/2", "7", "0", "-3",
                     "2023-11-14T22:13:20Z", "2023-11-14T22:13:20", str(NOW), "9" * 40, "", " ", "a:b"]),
    st.text(max_size=20),
)
json_ints = st.one_of(st.integers(min_value=-(2**63), max_value=2**64 - 1),
                      st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63), 253_402_300_800_000]))
json_scalars = st.one_of(st.none(), st.booleans(), json_ints, st.floats(allow_nan=False, allow_infinity=False),
                         plausible_text)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                  st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4)),
                           max_leaves=5)


def deep(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


json_bodies = st.one_of(
    st.dictionaries(st.sampled_from(NAMES), json_values, max_size=5).map(lambda d: orjson.dumps(d).decode()),
    json_values.map(lambda v: orjson.dumps(v).decode()),
    st.integers(min_value=1, max_value=3000).map(deep),
    st.integers(min_value=1, max_value=600).map(lambda n: '{"command":' + deep(n) + "}"),
    st.text(max_size=40),
    st.sampled_from(['{"command": 1e400}', '{"user": 99999999999999999999999}', '{"id": "\\ud800"}', "{"]),
)
values = st.one_of(plausible_text, st.binary(max_size=24), json_bodies, huge_ints.map(str),
                   st.binary(max_size=8).map(lambda b: b"\xff" + b))
names = st.one_of(st.sampled_from(NAMES), st.sampled_from([n.encode() for n in NAMES]), st.binary(max_size=6))
entries = st.dictionaries(names, values, max_size=6)
entry_ids = st.one_of(st.none(), st.sampled_from([f"{NOW - 1000}-0", "0-0", "x-y", "-", "99999999999999999999-0"]))

_ID = re.compile(COMMAND_ID_PATTERN)


@settings(max_examples=2_500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries, entry_ids)
@example({"id": "a", "json": deep(100_000)}, None)
@example({b"id": b"\xff", b"command": b"status"}, None)
@example({"id": "a", "command": "start", "exchange": "coinbase", "user": "9" * 5000}, None)
@example({"id": "a", "command": "stop", "sent_at": "9" * 5000}, None)
@example({"id": "a", "command": "stop", "expires_at": "0001-01-01T00:00:00+14:00"}, None)
@example({"id": "a", "command": "stop", "symbols": ["x"] * 1000 + [deep(50)]}, None)
def test_any_entry_gives_a_command_or_a_command_error(fields, entry_id):
    try:
        cmd = decode_command_entry(fields, now_ms=NOW, entry_id=entry_id)
    except CommandError as exc:
        assert exc.reason and "\n" not in exc.reason and len(exc.reason) < 400
        assert exc.command_id is None or _ID.match(exc.command_id)
        assert exc.verb is None or exc.verb in VERBS
        msgspec.json.encode(exc.reason)  # it can be written into an answer
    else:
        assert isinstance(cmd, Command) and cmd.verb in VERBS and _ID.match(cmd.id)
        assert cmd.expires_at_ms >= NOW
        # what was accepted survives its own stream form unchanged
        assert decode_command_entry(cmd.to_fields(), now_ms=NOW) == cmd
