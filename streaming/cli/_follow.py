"""Following a live channel from the command line (`alerts`, `candles --follow`): one line per message,
one line each time Redis goes away and comes back, one line and exit 1 when it stays away."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streaming.cli._common import check_named_exchanges, emit, seconds
from streaming.defaults import DEFAULT_RECONNECT_TIMEOUT_S
from streaming.errors import printable

if TYPE_CHECKING:
    from streaming.settings import LivermoreSettings

EXIT_REDIS_GONE = 1


def add_follow_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reconnect-timeout", type=seconds, default=DEFAULT_RECONNECT_TIMEOUT_S, metavar="S",
                   help="when Redis goes away, keep reconnecting this many seconds, then exit 1 "
                        f"(default {DEFAULT_RECONNECT_TIMEOUT_S:g})")


def _status(line: str) -> None:
    print(f"livermore: {printable(line)}", file=sys.stderr, flush=True)


def follow(settings: LivermoreSettings, args: argparse.Namespace, subscribe: Callable[[Any, list[int] | None], Any],
           line: Callable[[dict[str, Any], dict[int, str]], str]) -> int:
    """Print what `subscribe(client, exchange_ids)` yields until Ctrl-C, a closed pipe or Redis gone for good."""
    from streaming.client import LivermoreClient, RedisUnavailable, resolve_exchanges
    from streaming.settings import resolve_redis_url

    check_named_exchanges(settings, args.exchange)
    client = LivermoreClient(resolve_redis_url(settings), reconnect_timeout=args.reconnect_timeout,
                             on_status=_status)
    try:
        names = resolve_exchanges(client.redis, args.exchange, settings)
        subscription = subscribe(client, list(names) if args.exchange else None)
        with contextlib.closing(subscription.messages()) as messages:
            for msg in messages:
                text = msg.raw if args.json or msg.data is None else line(msg.data, names)
                emit(printable(text))
    except RedisUnavailable as exc:
        _status(str(exc))
        return EXIT_REDIS_GONE
    finally:
        client.close()
    return 0
