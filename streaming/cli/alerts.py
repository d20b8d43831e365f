"""`livermore alerts`: follow MACD-V alerts of any exchanges, one line per alert."""

from __future__ import annotations

import argparse

from streaming.cli._common import add_command, settings_for
from streaming.cli._follow import add_follow_options, follow


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "alerts", "follow MACD-V alerts as they fire (Ctrl-C to stop)",
                    "Survives Redis restarts: it reconnects, and prints the alerts published meanwhile "
                    "(read from the durable stream stream:alerts).")
    p.add_argument("--exchange", action="append", metavar="NAME",
                   help="only this exchange (repeatable; default: all)")
    p.add_argument("--json", action="store_true", help="print each alert's raw JSON")
    add_follow_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streaming.client import alert_line
    return follow(settings_for(args), args, lambda client, ids: client.alerts(exchanges=ids),
                  lambda data, _names: alert_line(data))
