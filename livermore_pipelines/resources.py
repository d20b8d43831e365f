"""Resources per deployment (LIVERMORE_DEPLOYMENT=local|production).

local: the embedded defaults of streaming.settings (SQLite under LIVERMORE_HOME, Livermore's own
Redis server unless LIVERMORE_REDIS_URL is set). production: LIVERMORE_DATABASE_URL and
LIVERMORE_REDIS_URL must both be set; nothing is started on the side.

A URL given in the environment is passed as dg.EnvVar: Dagster resolves it when a run starts and
its UI (the Resources page) shows the variable's name, never the URL and its password.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal, TypeVar

import dagster as dg
import redis
import sqlalchemy as sa

from streaming.db.engine import make_engine
from streaming.settings import Settings, check_database_url, default_home, load_settings, redis_client, settings_from

T = TypeVar("T")
DEPLOYMENTS = ("local", "production")


class DatabaseResource(dg.ConfigurableResource):
    """The relational store (SQLite or PostgreSQL)."""

    url: str

    def dsn(self) -> str:
        """The URL as SQLAlchemy takes it (a plain postgresql:// gets the psycopg2 driver)."""
        return check_database_url(self.url)

    @contextmanager
    def engine(self) -> Iterator[sa.Engine]:
        engine = make_engine(self.dsn())
        try:
            yield engine
        finally:
            engine.dispose()


class RedisResource(dg.ConfigurableResource):
    """Redis; `url=None` means the embedded server Livermore starts under `home`."""

    url: str | None = None
    home: str = str(default_home())

    @contextmanager
    def client(self) -> Iterator[redis.Redis]:
        client = redis_client(self.settings(database_url="sqlite://"))
        try:
            yield client
        finally:
            client.close()

    def settings(self, database_url: str) -> Settings:
        # the settings an environment with these values would give (an empty URL: the embedded server)
        return settings_from({"LIVERMORE_HOME": self.home, "LIVERMORE_DATABASE_URL": database_url,
                              "LIVERMORE_REDIS_URL": self.url or ""})


class DeploymentResource(dg.ConfigurableResource):
    """Where this code location runs: `local` may spawn a worker itself, `production` runs it as a service."""

    name: Literal["local", "production"] = "local"

    @property
    def spawns_workers(self) -> bool:
        return self.name != "production"


class ExchangeClientsResource(dg.ConfigurableResource):
    """Builds exchange adapters from `exchanges` rows; LIVERMORE_<NAME>_WS_URL/_REST_URL override URLs."""

    @asynccontextmanager
    async def adapter(self, row: Mapping[str, Any]) -> AsyncIterator[Any]:
        from streaming.adapters.factory import build_adapter

        adapter = build_adapter(row)
        try:
            yield adapter
        finally:
            await adapter.aclose()


def platform_settings(database: DatabaseResource, redis_res: RedisResource) -> Settings:
    """The Settings a worker spawned from Dagster must share with it."""
    return redis_res.settings(database.dsn())


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Ops and assets are synchronous; adapters are asyncio."""
    return asyncio.run(coro)


def resources_for_deployment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources of the code location; `env` (default: this process's) decides which.

    A URL `env` sets becomes dg.EnvVar(name), which Dagster reads from the environment of the
    process that runs the op: the code location's own, as `livermore up` starts it.
    """
    settings = load_settings(env)  # LIVERMORE_DEPLOYMENT is checked there
    if settings.deployment == "production":
        settings.require_servers()
    given = settings.given
    return {
        "database": DatabaseResource(url=dg.EnvVar("LIVERMORE_DATABASE_URL") if "database_url" in given
                                     else settings.database_url.get_secret_value()),
        "redis": RedisResource(url=dg.EnvVar("LIVERMORE_REDIS_URL") if settings.redis_url is not None else None,
                               home=str(settings.home)),
        "exchange_clients": ExchangeClientsResource(),
        "deployment": DeploymentResource(name=settings.deployment),
    }
