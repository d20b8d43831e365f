"""Settings from the environment, validated up front.

LIVERMORE_HOME          state directory (default ./.livermore)
LIVERMORE_DATABASE_URL  SQLAlchemy URL (default SQLite at $LIVERMORE_HOME/livermore.db)
LIVERMORE_REDIS_URL     Redis URL (default: the embedded server Livermore starts itself)

Anything invalid raises UsageError with one line saying what is wrong and what to do.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from streaming.errors import UsageError

REDIS_SCHEMES = ("redis", "rediss", "unix")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2")


def mask_url(url: str) -> str:
    """The URL with any password replaced: safe for logs and error messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    redis_url: str | None  # None: the embedded server under home

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def _check_home(home: Path) -> Path:
    try:
        home.mkdir(parents=True, exist_ok=True)
        # a file of our own: processes starting together (up, worker, Dagster runs) share the home
        with tempfile.NamedTemporaryFile(dir=home, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"LIVERMORE_HOME={home} is not a writable directory ({exc.strerror or exc}); "
            "set LIVERMORE_HOME to a directory you can write"
        ) from None
    return home


def _check_database_url(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise UsageError(
            f"LIVERMORE_DATABASE_URL={mask_url(url)!s} is not a supported database URL; use "
            "sqlite:///path/to/file.db or postgresql+psycopg2://user:password@host:5432/dbname"
        )
    if scheme == "postgresql":
        # dagster-postgres and Livermore both talk psycopg2; say so explicitly for SQLAlchemy 2.1
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    if scheme.startswith("postgresql"):
        parts = urlsplit(url)
        if not parts.hostname or not parts.path.strip("/"):
            raise UsageError(
                f"LIVERMORE_DATABASE_URL={mask_url(url)} names no host or database; "
                "use postgresql+psycopg2://user:password@host:5432/dbname"
            )
    return url


def _check_redis_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"LIVERMORE_REDIS_URL is not a valid URL ({exc}); use redis://host:6379/0") from None
    if parts.scheme not in REDIS_SCHEMES or (parts.scheme != "unix" and not parts.hostname):
        raise UsageError(
            f"LIVERMORE_REDIS_URL={mask_url(url)} is not a Redis URL; use redis://host:6379/0, "
            "or unset it to let Livermore start its own Redis server"
        )
    return url


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = _check_home(Path(env.get("LIVERMORE_HOME") or ".livermore").expanduser().resolve())
    db = env.get("LIVERMORE_DATABASE_URL") or f"sqlite:///{home / 'livermore.db'}"
    redis_url = env.get("LIVERMORE_REDIS_URL") or None
    return Settings(
        home=home,
        database_url=_check_database_url(db),
        redis_url=_check_redis_url(redis_url) if redis_url else None,
    )


def resolve_redis_url(settings: Settings) -> str:
    """The URL to connect to: the configured server (checked reachable) or the embedded one."""
    if settings.redis_url is None:
        from streaming.redis_server import RedisServerError, ensure_embedded_redis

        try:
            return ensure_embedded_redis(settings.home)
        except RedisServerError as exc:
            raise UsageError(f"cannot start the embedded Redis server: {exc}") from None
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise UsageError(
            f"Redis at LIVERMORE_REDIS_URL={mask_url(settings.redis_url)} is unreachable ({exc}); "
            "start it, fix the URL, or unset LIVERMORE_REDIS_URL to use the embedded server"
        ) from None
    finally:
        client.close()
    return settings.redis_url


def redis_client(settings: Settings, decode_responses: bool = True) -> redis.Redis:
    return redis.Redis.from_url(resolve_redis_url(settings), decode_responses=decode_responses)
