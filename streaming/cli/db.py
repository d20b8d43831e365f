"""`livermore db upgrade|downgrade|current`: the relational schema through Alembic."""

from __future__ import annotations

import argparse

from streaming.settings import load_settings, mask_url


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="migrate the relational database (SQLite or PostgreSQL)")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = sub.add_parser("upgrade", help="migrate to the newest schema and seed the exchanges")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=_upgrade)
    down = sub.add_parser("downgrade", help="migrate down (default: remove every table)")
    down.add_argument("revision", nargs="?", default="base")
    down.set_defaults(func=_downgrade)
    cur = sub.add_parser("current", help="print the current and the newest revision")
    cur.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from streaming.db.migrate import upgrade

    settings = load_settings()
    inserted = upgrade(settings.database_url, args.revision)
    print(f"database {mask_url(settings.database_url)} at revision {args.revision}; "
          f"{inserted} exchange row(s) seeded")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from streaming.db.migrate import downgrade

    settings = load_settings()
    downgrade(settings.database_url, args.revision)
    print(f"database {mask_url(settings.database_url)} downgraded to {args.revision}")
    return 0


def _current(_args: argparse.Namespace) -> int:
    from streaming.db.engine import check_connection, make_engine
    from streaming.db.migrate import current_revision, head_revision

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        check_connection(engine)
        print(f"current: {current_revision(engine) or '(empty database)'}  head: {head_revision()}")
    finally:
        engine.dispose()
    return 0
