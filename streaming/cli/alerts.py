"""`livermore alerts`: follow MACD-V alerts of any exchanges, one line per alert."""

from __future__ import annotations

import argparse

from streaming import keys
from streaming.client import alert_line, print_messages, resolve_exchanges
from streaming.settings import load_settings, redis_client


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("alerts", help="follow MACD-V alerts as they fire (Ctrl-C to stop)")
    p.add_argument("--exchange", action="append", metavar="NAME",
                   help="only this exchange (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="print each alert's raw JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    client = redis_client(settings)
    try:
        ids = resolve_exchanges(client, args.exchange, settings) if args.exchange else None
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        if ids is None:
            pubsub.psubscribe(keys.alerts_channel("*"))
        else:
            pubsub.subscribe(*[keys.alerts_channel(i) for i in ids])
        print_messages(pubsub, alert_line, args.json)
    finally:
        client.close()
    return 0
