"""`livermore candles`: stored candles of one stream, or --follow candle closes of any exchanges."""

from __future__ import annotations

import argparse
import json

from streaming import keys
from streaming.cli._common import (
    MAX_LIMIT,
    add_command,
    check_named_exchanges,
    count,
    emit,
    settings_for,
    timeframe,
)
from streaming.cli._follow import add_follow_options, follow
from streaming.errors import UsageError
from streaming.timeframes import TIMEFRAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "candles", "print stored candles, or --follow candle closes live",
                    "With --follow it survives Redis restarts (it reconnects; closes published while "
                    "disconnected are not repeated, the candles themselves are stored).")
    p.add_argument("--follow", "-f", action="store_true", help="print candle-close events as they happen")
    p.add_argument("--exchange", action="append", metavar="NAME", help="exchange (repeatable with --follow)")
    p.add_argument("--symbol", help="exchange symbol, e.g. BTC-USD or BTCUSDT")
    p.add_argument("--timeframe", type=timeframe, metavar="TF", help=f"one of {', '.join(TIMEFRAMES)}")
    p.add_argument("--limit", type=count(1, MAX_LIMIT), default=20, metavar="N",
                   help=f"stored candles to show, 1 to {MAX_LIMIT} (default 20; without --follow)")
    p.add_argument("--json", action="store_true", help="raw JSON lines")
    add_follow_options(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.symbol is not None:
        try:
            keys.validate_symbol(args.symbol)
        except keys.InvalidSymbol as exc:
            raise UsageError(str(exc)[:200]) from None
    if not args.follow and not (args.exchange and len(args.exchange) == 1 and args.symbol and args.timeframe):
        raise UsageError("show stored candles with --exchange NAME --symbol S --timeframe TF, "
                         "or follow closes with --follow")


def run(args: argparse.Namespace) -> int:
    from streaming.client import candle_line, resolve_exchanges
    from streaming.settings import redis_client
    _check(args)
    settings = settings_for(args)
    check_named_exchanges(settings, args.exchange)
    if args.follow:
        return follow(settings, args,
                      lambda client, ids: client.candle_closes(exchanges=ids, symbol=args.symbol or "*",
                                                               timeframe=args.timeframe or "*"),
                      lambda data, names: candle_line(data, names.get(data.get("exchange_id", -1))
                                                      or data.get("exchange")))
    client = redis_client(settings)
    try:
        (ex, name), = resolve_exchanges(client, args.exchange, settings).items()
        key = keys.candles(ex, args.symbol, args.timeframe)
        stored: list[str] = client.zrange(key, -args.limit, -1)  # type: ignore[assignment]
        for raw in stored:
            emit(raw if args.json else
                 candle_line({**json.loads(raw), "symbol": args.symbol, "timeframe": args.timeframe}, name))
    finally:
        client.close()
    return 0
