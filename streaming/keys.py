"""The Redis keyspace (docs/architecture.md). Every key and channel name is built here."""

from __future__ import annotations

import re

# Anything outside this set could break key patterns (':' separates fields, '*?[' are glob
# metacharacters for SCAN/PSUBSCRIBE, whitespace breaks CLI tools).
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")


class InvalidSymbol(ValueError):
    pass


def validate_symbol(symbol: object) -> str:
    """Return `symbol` if it is safe in the keyspace, else raise InvalidSymbol saying why."""
    if not isinstance(symbol, str):
        raise InvalidSymbol(f"symbol must be a string, got {type(symbol).__name__}")
    if not _SYMBOL_RE.match(symbol):
        raise InvalidSymbol(
            f"symbol {symbol!r} rejected: only letters, digits and . _ / - are allowed "
            "(no ':', '*', '?', '[', spaces), at most 40 characters"
        )
    return symbol


def candles(exchange_id: int, symbol: str, timeframe: str) -> str:
    return f"candles:{exchange_id}:{symbol}:{timeframe}"


def user_candles(user_id: int, exchange_id: int, symbol: str, timeframe: str) -> str:
    return f"usercandles:{user_id}:{exchange_id}:{symbol}:{timeframe}"


def indicator(exchange_id: int, symbol: str, timeframe: str) -> str:
    return f"indicator:{exchange_id}:{symbol}:{timeframe}:macd-v"


def candle_close_channel(exchange_id: int, symbol: str, timeframe: str) -> str:
    return f"channel:exchange:{exchange_id}:candle:close:{symbol}:{timeframe}"


def candle_close_pattern(exchange_id: int | str = "*", symbol: str = "*", timeframe: str = "*") -> str:
    return f"channel:exchange:{exchange_id}:candle:close:{symbol}:{timeframe}"


def alerts_channel(exchange_id: int | str) -> str:
    return f"channel:alerts:{exchange_id}"


ALERTS_STREAM = "stream:alerts"


def lifecycle_channel(exchange_id: int) -> str:
    return f"channel:exchange:{exchange_id}:lifecycle"


LIFECYCLE_STREAM = "stream:lifecycle"


def exchange_status(exchange_id: int) -> str:
    """HASH: connection_state, connected_at, last_heartbeat, last_error, updated_at, worker_id, worker_states.

    The merge of the live workers' exchange_worker_status hashes (streaming.control.merge).
    """
    return f"exchange:{exchange_id}:status"


def exchange_worker_status(exchange_id: int, worker_id: str) -> str:
    """HASH: one worker's own status of an exchange (same fields); exchange_status(id) merges them."""
    return f"exchange:{exchange_id}:status:{worker_id}"


def exchange_stats(exchange_id: int) -> str:
    """HASH: field worker_id -> JSON ExchangeStats (streaming.contracts.stats), the worker's measurements."""
    return f"exchange:{exchange_id}:stats"


# A worker's own status outlives it by at most this much (it is refreshed on every write and
# removed on a clean shutdown; a killed worker's copy is ignored once its heartbeat is stale).
WORKER_STATUS_TTL_S = 86_400


def exchange_meta(exchange_id: int) -> str:
    """JSON of the exchanges row, written by the Dagster `exchanges` asset for the worker."""
    return f"exchange:{exchange_id}:meta"


EXCHANGES_BY_NAME = "exchanges:by-name"  # HASH name -> id


def universe(exchange_id: int) -> str:
    """JSON of the symbol universe of an exchange (Tier 1 + Tier 2), written by Dagster."""
    return f"universe:{exchange_id}"


def tier1(exchange_id: int) -> str:
    return f"symbols:tier1:{exchange_id}"


def closed_marker(exchange_id: int, symbol: str, timeframe: str) -> str:
    """Open time (ms) of the newest bar whose close event was published: makes events exactly-once."""
    return f"closed:{exchange_id}:{symbol}:{timeframe}"


def alert_state(exchange_id: int, symbol: str, timeframe: str) -> str:
    """HASH: previous MACD-V, cooldown expiries, reversal latches; survives worker restarts."""
    return f"alertstate:{exchange_id}:{symbol}:{timeframe}"


# control plane
COMMANDS_STREAM = "worker:commands"


def command_responses(command_id: str) -> str:
    return f"worker:responses:{command_id}"


WORKERS = "workers"  # HASH worker_id -> JSON heartbeat


def worker_heartbeat(worker_id: str) -> str:
    return f"worker:{worker_id}:heartbeat"


# Commands and lifecycle streams are trimmed approximately to these lengths.
COMMANDS_MAXLEN = 10_000
LIFECYCLE_MAXLEN = 100_000
RESPONSES_TTL_S = 600
HEARTBEAT_TTL_S = 15  # worker:{id}:heartbeat outlives a dead worker by at most this much
CURSOR_TTL_S = 7 * 86_400  # a worker id unused for a week starts over (replays the last minutes)
SPAWN_LOCK_TTL_S = 60  # a caller that dies while spawning blocks others at most this long


def worker_command_taken(worker_id: str, command_id: str) -> str:
    """Set once a worker has taken a command id (expires with the command): a duplicate entry runs once."""
    return f"worker:{worker_id}:taken:{command_id}"


def worker_cursor(worker_id: str) -> str:
    """Last command-stream id a worker has handled: a restarted worker with the same id resumes there."""
    return f"worker:{worker_id}:cursor"


def spawn_lock(shard: str | None) -> str:
    """A redis-py Lock held while one caller spawns a worker for a shard (or for everything)."""
    return f"worker:spawn-lock:{shard or 'all'}"


# alert delivery (`livermore notify`, docs/alert-delivery.md)
NOTIFY_GROUP = "notify"  # consumer group of the delivery service on ALERTS_STREAM
NOTIFY_DEAD_STREAM = "stream:notify:dead"  # alerts given up on, with the reason (field "json")
NOTIFY_DEAD_MAXLEN = 100_000
NOTIFY_CONSUMERS = "notify:consumers"  # HASH consumer -> heartbeat JSON (queued per destination)


def notify_delivery(destination_id: int, alert_id: str) -> str:
    """STRING: `sending:{owner}` while leased (PX), then `sent` or `dead` (EX 7 days): never twice."""
    return f"notify:delivery:{destination_id}:{alert_id}"


def notify_status(destination_id: int) -> str:
    """HASH: sent, messages, digests, failed, dead, last_error, last_error_at, last_sent_at."""
    return f"notify:status:{destination_id}"
