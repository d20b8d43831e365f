"""Engines for SQLite (embedded default) and PostgreSQL, with the same behaviour on both."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

from streaming.errors import UsageError
from streaming.settings import mask_url


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite; PostgreSQL always enforces
    cur.execute("PRAGMA journal_mode=WAL")  # Dagster runs, sensors and the CLI share the file
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def check_connection(engine: sa.Engine) -> None:
    """Fail fast, in one line, when the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(
            f"database at {mask_url(str(engine.url.render_as_string(hide_password=False)))} is unreachable "
            f"({reason}); start it, fix LIVERMORE_DATABASE_URL, or unset it to use SQLite"
        ) from None
