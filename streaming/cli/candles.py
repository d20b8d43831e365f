"""`livermore candles`: stored candles of one stream, or --follow candle closes of any exchanges."""

from __future__ import annotations

import argparse
import json

from streaming import keys
from streaming.client import candle_line, print_messages, resolve_exchanges
from streaming.errors import UsageError
from streaming.settings import load_settings, redis_client
from streaming.timeframes import TIMEFRAMES, UnknownTimeframe, timeframe_ms


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("candles", help="stored candles of a stream, or --follow candle closes live")
    p.add_argument("--follow", "-f", action="store_true", help="print candle-close events as they happen")
    p.add_argument("--exchange", action="append", metavar="NAME", help="exchange (repeatable with --follow)")
    p.add_argument("--symbol", help="exchange symbol, e.g. BTC-USD or BTCUSDT")
    p.add_argument("--timeframe", help=f"one of {', '.join(TIMEFRAMES)}")
    p.add_argument("--limit", type=int, default=20, help="stored candles to show (without --follow)")
    p.add_argument("--json", action="store_true", help="raw JSON lines")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    if args.symbol is not None:
        try:
            keys.validate_symbol(args.symbol)
        except keys.InvalidSymbol as exc:
            raise UsageError(str(exc)) from None
    if args.timeframe is not None:
        try:
            timeframe_ms(args.timeframe)
        except UnknownTimeframe as exc:
            raise UsageError(str(exc)) from None
    if not args.follow:
        if not (args.exchange and len(args.exchange) == 1 and args.symbol and args.timeframe):
            raise UsageError("show stored candles with --exchange NAME --symbol S --timeframe TF, "
                             "or follow closes with --follow")
        if args.limit < 1:
            raise UsageError("--limit must be at least 1")


def run(args: argparse.Namespace) -> int:
    _check(args)
    settings = load_settings()
    client = redis_client(settings)
    try:
        ids = resolve_exchanges(client, args.exchange, settings)
        if not args.follow:
            (ex, name), = ids.items()
            key = keys.candles(ex, args.symbol, args.timeframe)
            for raw in client.zrange(key, -args.limit, -1):
                if args.json:
                    print(raw, flush=True)
                else:
                    print(candle_line({**json.loads(raw), "symbol": args.symbol, "timeframe": args.timeframe},
                                      name), flush=True)
            return 0
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        patterns = [keys.candle_close_pattern(i, args.symbol or "*", args.timeframe or "*") for i in ids] \
            if args.exchange else [keys.candle_close_pattern("*", args.symbol or "*", args.timeframe or "*")]
        pubsub.psubscribe(*patterns)
        print_messages(pubsub, lambda data: candle_line(data, data.get("exchange")), args.json)
    finally:
        client.close()
    return 0
