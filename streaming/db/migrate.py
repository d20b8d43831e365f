"""`livermore db upgrade|downgrade` through Alembic, without an alembic.ini on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

import migrations
from streaming.db.engine import check_connection, make_engine
from streaming.db.seed import seed
from streaming.errors import UsageError, shown

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # '%' is interpolation syntax in ConfigParser; passwords may contain it
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _migrate(engine: sa.Engine, url: str, step: Callable[[Config, str], None], revision: str) -> None:
    """Run an Alembic command on one connection of `engine`, in one transaction."""
    check_connection(engine)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            step(cfg, revision)
    except CommandError as exc:  # e.g. an unknown revision: the user's words, not a traceback
        raise UsageError(f"migration to {shown(revision, 40)} failed: {str(exc)[:160]}; "
                         f"`livermore db current` shows the revisions (newest: {head_revision()})") from None


def upgrade(url: str, revision: str = "head", seed_data: bool = True) -> int:
    """Migrate to `revision` and seed; return the number of seed rows inserted."""
    engine = make_engine(url)
    try:
        _migrate(engine, url, command.upgrade, revision)
        if seed_data and revision == "head":
            with engine.begin() as conn:
                return seed(conn)
        return 0
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> None:
    engine = make_engine(url)
    try:
        _migrate(engine, url, command.downgrade, revision)
    finally:
        engine.dispose()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
