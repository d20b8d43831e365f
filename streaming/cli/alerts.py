"""`livermore alerts`: follow MACD-V alerts of any exchanges, one line per alert."""

from __future__ import annotations

import argparse
import json

from streaming.client import alert_line, resolve_exchanges
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
            pubsub.psubscribe("channel:alerts:*")
        else:
            pubsub.subscribe(*[f"channel:alerts:{i}" for i in ids])
        for msg in pubsub.listen():
            if msg.get("type") not in ("message", "pmessage"):
                continue
            if args.json:
                print(msg["data"], flush=True)
                continue
            try:
                data = json.loads(msg["data"])
                print(alert_line(data) if isinstance(data, dict) else msg["data"], flush=True)
            except ValueError:
                print(msg["data"], flush=True)
    finally:
        client.close()
    return 0
