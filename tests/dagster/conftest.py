"""Fixtures of the Dagster tests: a migrated database, resources on real servers, an instance."""

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from livermore_pipelines.resources import (
    DatabaseResource,
    DeploymentResource,
    ExchangeClientsResource,
    RedisResource,
)
from streaming.adapters import http
from streaming.adapters.backoff import Backoff
from streaming.db.engine import make_engine
from streaming.db.migrate import upgrade
from streaming.db.schema import user_exchanges, users
from streaming.platform import prepare_dagster_home
from streaming.settings import load_settings
from tests import servers


@pytest.fixture
def db_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def resources(db_url: str, redis_url: str, tmp_path) -> dict[str, object]:
    return {"database": DatabaseResource(url=db_url), "redis": RedisResource(url=redis_url, home=str(tmp_path)),
            "exchange_clients": ExchangeClientsResource(), "deployment": DeploymentResource()}


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture
def stored_instance(db_url, tmp_path, monkeypatch, request) -> Iterator[dg.DagsterInstance]:
    """The Dagster instance `livermore up` would use, on the same kind of database as Livermore's."""
    env = {"LIVERMORE_HOME": str(tmp_path / "home")}
    if not db_url.startswith("sqlite"):
        dagster_db = servers.create_database(request.getfixturevalue("postgres_admin_url"))
        env["LIVERMORE_DAGSTER_DATABASE_URL"] = dagster_db
        monkeypatch.setenv("LIVERMORE_DAGSTER_DATABASE_URL", dagster_db)
    home = prepare_dagster_home(load_settings(env))
    with dg.DagsterInstance.from_config(str(home)) as inst:
        kind = type(inst.event_log_storage).__name__
        assert ("Postgres" in kind) == (not db_url.startswith("sqlite")), kind
        yield inst


class _QuickBackoff(Backoff):
    """The REST client's backoff at 1/100 of its delays: the same retries, milliseconds apart."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, factor: float = 2.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(base / 100, cap / 100, factor, rng)


@pytest.fixture
def quick_http_retries(monkeypatch) -> None:
    """Retries against an exchange that is not there take ~5 s of backoff per request otherwise."""
    monkeypatch.setattr(http, "Backoff", _QuickBackoff)


def add_user(engine: sa.Engine, user_id: int, exchange_id: int, key_env: str, secret_env: str,
             label: str = "default", active: bool = True) -> None:
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
            conn.execute(users.insert().values(id=user_id, external_id=f"user-{user_id}",
                                               display_name=f"User {user_id}"))
        conn.execute(user_exchanges.insert().values(user_id=user_id, exchange_id=exchange_id, label=label,
                                                    is_active=active, api_key_env=key_env,
                                                    api_secret_env=secret_env))


def now() -> datetime:
    return datetime.now(UTC)
