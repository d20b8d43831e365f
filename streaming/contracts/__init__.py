"""Every message Livermore's processes exchange through Redis, declared once as msgspec Structs.

Writers build these Structs and encode them; readers decode with them, so a field's name, type
and constraints live here and nowhere else. Pure: imports neither redis nor the worker.
docs/keyspace.md is generated from these definitions and streaming.contracts.keyspace
(`python -m streaming.contracts.docs > docs/keyspace.md`).
"""

from streaming.contracts.commands import (
    Command,
    CommandError,
    CommandExpired,
    CommandResponse,
    decode_command_entry,
)
from streaming.contracts.market import AlertEvent, CloseEvent, IndicatorValue, decode_alert, encode_alert
from streaming.contracts.universe import Universe, UniverseEntry, UniverseError
from streaming.contracts.workers import ExchangeStatus, Heartbeat, LifecycleEvent, WarmUpProgress

__all__ = [
    "AlertEvent",
    "CloseEvent",
    "Command",
    "CommandError",
    "CommandExpired",
    "CommandResponse",
    "ExchangeStatus",
    "Heartbeat",
    "IndicatorValue",
    "LifecycleEvent",
    "Universe",
    "UniverseEntry",
    "UniverseError",
    "WarmUpProgress",
    "decode_alert",
    "decode_command_entry",
    "encode_alert",
]
