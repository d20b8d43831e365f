"""docs/keyspace.md, generated: the keys (named by streaming.keys) and the messages (the Structs).

    python -m streaming.contracts.docs > docs/keyspace.md

A test fails when the committed page differs from what this prints, so the reference cannot
drift from the code. Prose that is not a key or a field lives here, next to the tables.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect as mi

from streaming import keys
from streaming.contracts.commands import Command, CommandResponse
from streaming.contracts.market import AlertEvent, CloseEvent, IndicatorValue
from streaming.contracts.stats import ExchangeStats
from streaming.contracts.universe import Universe, UniverseEntry
from streaming.contracts.workers import ExchangeStatus, Heartbeat, LifecycleEvent, WarmUpProgress
from streaming.pipeline.config import PipelineConfig
from streaming.store.candles import DEFAULT_MAX_CANDLES, DEFAULT_USER_TTL_S

# placeholders for the parts of a key name (keys' functions only format them)
ID: Any = "{id}"
SYMBOL: Any = "{symbol}"
TF: Any = "{tf}"
USER: Any = "{user}"
WORKER: Any = "{worker_id}"
DESTINATION: Any = "{destination_id}"


def _days(seconds: int) -> str:
    return f"{seconds // 86_400} days" if seconds % 86_400 == 0 and seconds > 86_400 else (
        "1 day" if seconds == 86_400 else f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds} s")


def _n(value: int) -> str:
    return f"{value:,}".replace(",", " ")


@dataclass(frozen=True)
class Key:
    name: str
    type: str
    content: str


@dataclass(frozen=True)
class Message:
    title: str
    struct: type[msgspec.Struct]
    where: str
    notes: str = ""
    as_hash: bool = False  # every field a string in a HASH


def _default(cls: Any, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


_ALERTS_MAXLEN = _default(PipelineConfig, "alerts_stream_maxlen")

MARKET = [
    Key(keys.candles(ID, SYMBOL, TF), "ZSET",
        'closed candles, score = open time (epoch ms), member = `{"timestamp","open","high","low","close",'
        f'"volume"}}`; the newest {_n(DEFAULT_MAX_CANDLES)} are kept'),
    Key(keys.user_candles(USER, ID, SYMBOL, TF), f"ZSET, TTL {_days(DEFAULT_USER_TTL_S)}",
        "the same for Tier-2-only symbols, one per holding user; readers try `candles:` first"),
    Key(keys.closed_marker(ID, SYMBOL, TF), "string",
        "open time (ms) of the newest bar whose close event was published, or that a warm-up or history retry "
        "stored as already published: makes close events exactly-once"),
    Key(keys.indicator(ID, SYMBOL, TF), "string (JSON)", "the latest MACD-V: an [indicator value](#indicator-value)"),
    Key(keys.alert_state(ID, SYMBOL, TF), "hash",
        "the alert rules' state: `v, prev_macd_v, cooldowns (JSON), oversold_latched, overbought_latched`"),
    Key(keys.candle_close_channel(ID, SYMBOL, TF), "pub/sub",
        "one [candle-close event](#candle-close-event) per closed bar"),
    Key(keys.alerts_channel(ID), "pub/sub", "one [alert](#alert) per message"),
    Key(keys.ALERTS_STREAM, f"stream, ~{_n(_ALERTS_MAXLEN)}", "the same alerts, field `json`: the durable copy"),
]

DAGSTER = [
    Key(keys.exchange_meta(ID), "string (JSON)", "the `exchanges` row (written by the `exchanges` asset)"),
    Key(keys.EXCHANGES_BY_NAME, "hash", "exchange name -> id"),
    Key(keys.tier1(ID), "string (JSON)", "the ranked Tier 1 symbols"),
    Key(keys.universe(ID), "string (JSON)", "the [universe](#universe): the symbols the workers stream"),
]

CONTROL = [
    Key(keys.COMMANDS_STREAM, f"stream, ~{_n(keys.COMMANDS_MAXLEN)}", "[commands](#command) to the workers"),
    Key(keys.command_responses("{command_id}"), f"list, TTL {_days(keys.RESPONSES_TTL_S)}",
        "the [command responses](#command-response), oldest first: from each worker an `ack`, then `success` "
        "or `error`"),
    Key(keys.WORKERS, "hash", "worker_id -> [heartbeat](#heartbeat) JSON, rewritten every 2 s"),
    Key(keys.worker_heartbeat(WORKER), f"string, TTL {_days(keys.HEARTBEAT_TTL_S)}", "the same JSON"),
    Key(keys.worker_cursor(WORKER), f"string, TTL {_days(keys.CURSOR_TTL_S)}",
        "the id of the last `worker:commands` entry the worker handled: a restart with the same `--worker-id` "
        "resumes after it"),
    Key(keys.worker_command_taken(WORKER, "{command_id}"), "string, TTL while the command is valid + "
        f"{_days(keys.RESPONSES_TTL_S)}", "set when the worker takes a command id: an id added twice runs once"),
    Key(keys.spawn_lock("{shard or all}"), f"string (redis-py Lock), expires after {_days(keys.SPAWN_LOCK_TTL_S)}",
        "held while a worker is being spawned"),
    Key(keys.exchange_status(ID), "hash",
        "the [exchange status](#exchange-status) merged from its live workers' own statuses"),
    Key(keys.exchange_worker_status(ID, WORKER), f"hash, TTL {_days(keys.WORKER_STATUS_TTL_S)}",
        "one worker's own status of the exchange (the same fields but `worker_states`); removed on shutdown; "
        "ignored once the worker's heartbeat is stale"),
    Key(keys.exchange_stats(ID), f"hash, TTL {_days(keys.WORKER_STATUS_TTL_S)}",
        "worker_id -> [exchange stats](#exchange-stats) JSON, rewritten every 5 s by each worker streaming the "
        "exchange; its field is removed when the worker stops streaming it or shuts down cleanly"),
    Key(keys.lifecycle_channel(ID), "pub/sub", "[lifecycle events](#lifecycle-event)"),
    Key(keys.LIFECYCLE_STREAM, f"stream, ~{_n(keys.LIFECYCLE_MAXLEN)}", "the same events, field `json`"),
]

NOTIFY = [
    Key(keys.NOTIFY_GROUP, f"consumer group on `{keys.ALERTS_STREAM}`",
        "the alert delivery service's place in the alert stream ([alert delivery](alert-delivery.md))"),
    Key(keys.notify_delivery(DESTINATION, "{alert_id}"), "string, PX while leased, then EX 7 days",
        "`sending:{owner}` while one service sends the alert to destination `{destination_id}`, then `sent` or `dead`: "
        "an alert reaches a destination once"),
    Key(keys.notify_status(DESTINATION), "hash",
        "one per destination: `sent, messages, digests, failed, dead, last_error, last_error_at, last_sent_at`"),
    Key(keys.NOTIFY_DEAD_STREAM, f"stream, ~{_n(keys.NOTIFY_DEAD_MAXLEN)}",
        "alerts given up on, field `json`, with the destination and the reason"),
    Key(keys.NOTIFY_CONSUMERS, "hash", "delivery service -> heartbeat JSON (queued alerts per destination)"),
]

MESSAGES = [
    Message("Candle-close event", CloseEvent, f"JSON on `{keys.candle_close_channel(ID, SYMBOL, TF)}`."),
    Message("Indicator value", IndicatorValue, f"JSON at `{keys.indicator(ID, SYMBOL, TF)}`.",
            "The fields are those of `MacdVValue`; [MACD-V](macd-v.md) defines each."),
    Message("Alert", AlertEvent, f"JSON on `{keys.alerts_channel(ID)}` and in `{keys.ALERTS_STREAM}` "
            "(field `json`)."),
    Message("Universe", Universe, f"JSON at `{keys.universe(ID)}`, written by the `symbol_universe` asset.",
            "A worker skips a malformed entry (logged) and serves the others."),
    Message("Universe entry", UniverseEntry, "One element of the universe's `symbols`."),
    Message("Command", Command, f"An entry of `{keys.COMMANDS_STREAM}`.",
            "In the stream every field is a string: `user` in decimal, `symbols` comma-separated, times in "
            "epoch ms or ISO 8601 with a zone, empty for absent. Alternatively one field `json` holds the object "
            "(with `id` beside it, so a malformed body can still be answered). Every worker reads every command "
            "and executes those meant for it once; one after its `expires_at` is answered `error` with a reason "
            "starting `expired` and not executed. An entry that cannot be read (not UTF-8, not JSON, a bad field) "
            "is answered `error` with the reason when it has a usable `id`, else counted and skipped; the worker's "
            "cursor moves past it either way."),
    Message("Command response", CommandResponse, f"JSON items of `{keys.command_responses('{command_id}')}`."),
    Message("Heartbeat", Heartbeat, f"JSON in `{keys.WORKERS}` and at `{keys.worker_heartbeat(WORKER)}`."),
    Message("Warm-up progress", WarmUpProgress, "The values of a heartbeat's `warm_up`.",
            "While a warm-up runs the worker writes its heartbeat at most every half second, so a reader "
            "polling it (`livermore start`, `livermore workers`) sees the progress move."),
    Message("Exchange status", ExchangeStatus,
            f"The fields of the hashes `{keys.exchange_status(ID)}` and `{keys.exchange_worker_status(ID, WORKER)}`.",
            "A merged field comes from the live workers' own hashes: a worker counts while its heartbeat is fresh "
            "and its status was written after it started. An unknown state counts as `error`.", as_hash=True),
    Message("Lifecycle event", LifecycleEvent, f"JSON on `{keys.lifecycle_channel(ID)}` and in "
            f"`{keys.LIFECYCLE_STREAM}` (field `json`).",
            "A live stream is stale when none of its frames came for its exchange's frame cadence (Coinbase 1 s, "
            "Binance 2 s) plus `LIVERMORE_STALE_AFTER_S` (or its per-exchange "
            "`LIVERMORE_<EXCHANGE>_STALE_AFTER_S`) while its connection is up: `stream:stale` (`reason` says "
            "how long), then it is resubscribed on the open connection and its gap filled over REST; "
            "`stream:recovered` once its frames arrive again."),
    Message("Exchange stats", ExchangeStats, f"JSON values of the hash `{keys.exchange_stats(ID)}`.",
            "Counters are cumulative since `since` (the worker's start): a reader takes differences between two "
            "readings with the same `since`; a new `since` means the worker restarted. Close lag is measured on "
            "the exchange's clock (the simulator's when offline) over the last 1024 closes, including those "
            "filled over REST. Prometheus gets the same counters from the worker's "
            "`/metrics` ([metrics](metrics.md))."),
]

ANCHORS = {m.struct: m.title.lower().replace(" ", "-") for m in MESSAGES}

HEAD = """# Redis keyspace, channels and message formats

<!-- Generated by `python -m streaming.contracts.docs` from streaming/keys.py and the msgspec
Structs in streaming/contracts; edit those, not this page (a test checks it is current). -->

Everything the live side shares goes through one Redis (the embedded server of
`LIVERMORE_HOME`, or `LIVERMORE_REDIS_URL`). `{id}` is the integer id of the exchange in the
`exchanges` table (1 coinbase, 2 binance, 3 binance_us); symbols are the exchange's own
(`BTC-USD` on Coinbase, `BTCUSDT` on Binance) and never contain `:`, `*`, `?`, `[` or spaces
(they are refused at the adapter boundary). `{worker_id}` is a worker's `--worker-id` and
`{destination_id}` the id of an alert destination (a `notify_destinations` row). Every key and
channel name is built in
`streaming/keys.py`; every message is a msgspec Struct in `streaming/contracts`, which writers
encode and readers decode with."""

ATOMIC = """The close script stores a candle, advances its `closed:` marker, publishes the close event,
writes the indicator and alert state and publishes the alerts in one atomic call that touches
keys of many streams: use one Redis (or one Redis per worker shard), not Redis Cluster."""


def _keys_table(rows: list[Key]) -> list[str]:
    out = ["| key / channel | type | content |", "|---|---|---|"]
    out += [f"| `{k.name}` | {k.type} | {k.content} |" for k in rows]
    return out


def _literal(value: object) -> str:
    return f"`{json.dumps(value)}`" if isinstance(value, str) else f"`{value}`"


def type_text(t: mi.Type) -> str:
    """A field's JSON type in words, with its numeric bounds and allowed values."""
    if isinstance(t, mi.Metadata):
        return type_text(t.type)
    if isinstance(t, mi.StrType):
        return "string"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.FloatType):
        return "number"
    if isinstance(t, mi.IntType):
        bounds = [f"> {t.gt}" if t.gt is not None else "", f">= {t.ge}" if t.ge is not None else ""]
        return " ".join(["integer", *(b for b in bounds if b)])
    if isinstance(t, mi.NoneType):
        return "null"
    if isinstance(t, mi.LiteralType):
        return " or ".join(_literal(v) for v in sorted(t.values, key=str))
    if isinstance(t, mi.UnionType):
        return " or ".join(type_text(x) for x in t.types)
    if isinstance(t, mi.VarTupleType | mi.ListType):
        return f"list of {type_text(t.item_type)}"
    if isinstance(t, mi.DictType):
        return f"object ({type_text(t.key_type)} -> {type_text(t.value_type)})"
    if isinstance(t, mi.StructType):
        return f"[{t.cls.__name__}](#{ANCHORS[t.cls]})"
    if isinstance(t, mi.AnyType):
        return "any JSON"
    raise TypeError(f"no wording for {t!r}")


def _descriptions(t: mi.Type) -> list[str]:
    out: list[str] = []
    if isinstance(t, mi.Metadata):
        text = (t.extra_json_schema or {}).get("description")
        if text:
            out.append(text)
        out += _descriptions(t.type)
    elif isinstance(t, mi.UnionType):
        for member in t.types:
            out += _descriptions(member)
    return out


def _field_rows(message: Message) -> list[str]:
    info = mi.type_info(message.struct)
    assert isinstance(info, mi.StructType)
    out = ["| field | type | meaning |", "|---|---|---|"]
    for f in info.fields:
        kind = "string" if message.as_hash else type_text(f.type)
        meaning = "; ".join(dict.fromkeys(_descriptions(f.type)))
        if not f.required and not message.as_hash:
            if "default" in meaning or "absent" in meaning:  # the meaning says what an absent field means
                kind += "; optional"
            else:
                default = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
                kind += f"; default `{msgspec.json.encode(default).decode()}`"
        out.append(f"| `{f.encode_name}` | {kind} | {meaning} |")
    return out


def _message(message: Message) -> list[str]:
    doc = inspect.cleandoc(message.struct.__doc__ or "").replace("\n", " ")
    text = " ".join(x for x in (f"`{message.struct.__name__}`: {doc}", message.where, message.notes) if x)
    return [f"### {message.title}", "", text, "", *_field_rows(message)]


def render() -> str:
    lines = [HEAD, "", "## Market data", "", *_keys_table(MARKET), "",
             "## Platform state written by Dagster", "", *_keys_table(DAGSTER), "",
             "## Worker control plane", "", *_keys_table(CONTROL), "", ATOMIC, "",
             "## Alert delivery", "", *_keys_table(NOTIFY), "", "## Messages", ""]
    for message in MESSAGES:
        lines += [*_message(message), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
