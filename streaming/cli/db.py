"""`livermore db upgrade|downgrade|current`: the relational schema through Alembic."""

from __future__ import annotations

import argparse
import sys

from streaming.cli._common import add_command, settings_for
from streaming.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    db = add_command(subparsers, "db", "migrate the relational database (SQLite or PostgreSQL)",
                     "The database is LIVERMORE_DATABASE_URL, by default SQLite in LIVERMORE_HOME.")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True, title="actions")
    up = add_command(sub, "upgrade", "migrate to the newest schema and seed the exchanges",
                     "Seeding is idempotent: rows that exist are left as the operator changed them.")
    up.add_argument("revision", nargs="?", default="head", metavar="REVISION",
                    help="Alembic revision to migrate to (default head, the newest)")
    up.set_defaults(func=_upgrade)
    down = add_command(sub, "downgrade", "migrate down to a revision",
                       "`base` removes every table and its data: without a revision this asks first "
                       "(or pass --yes).")
    down.add_argument("revision", nargs="?", default=None, metavar="REVISION",
                      help="Alembic revision to migrate down to; `base` = no tables (asked when omitted)")
    down.add_argument("--yes", action="store_true", help="remove every table without asking")
    down.set_defaults(func=_downgrade)
    cur = add_command(sub, "current", "print the current and the newest revision")
    cur.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from streaming.db.migrate import upgrade
    from streaming.settings import mask_url

    settings = settings_for(args)
    url = settings.database_url.get_secret_value()
    inserted = upgrade(url, args.revision)
    print(f"database {mask_url(url)} at revision {args.revision}; {inserted} exchange row(s) seeded")
    return 0


def _confirm_drop_everything(where: str) -> None:
    question = f"this removes every table of {where} and all its data; type 'yes' to continue: "
    if not sys.stdin.isatty():
        raise UsageError(f"`db downgrade` without a revision removes every table of {where}; "
                         "pass the revision `base` or --yes to confirm, or a revision to stop at")
    if input(question).strip().lower() != "yes":
        raise UsageError("nothing changed (not confirmed)")


def _downgrade(args: argparse.Namespace) -> int:
    from streaming.db.migrate import downgrade
    from streaming.settings import mask_url

    settings = settings_for(args)
    url = settings.database_url.get_secret_value()
    revision = args.revision
    if revision is None:
        if not args.yes:
            _confirm_drop_everything(mask_url(url))
        revision = "base"
    downgrade(url, revision)
    print(f"database {mask_url(url)} downgraded to {revision}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from streaming.db.engine import check_connection, make_engine
    from streaming.db.migrate import current_revision, head_revision

    settings = settings_for(args)
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        check_connection(engine)
        print(f"current: {current_revision(engine) or '(empty database)'}  head: {head_revision()}")
    finally:
        engine.dispose()
    return 0
