"""The checks of single setting values (URLs, user ids, durations, ports), each failing with one line that says
what is wrong and what to use instead, and never shows a password. streaming.settings applies them."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from streaming.errors import shown

REDIS_SCHEMES = ("redis", "rediss", "unix")
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2")
MAX_USER_ID = 2**31 - 1  # users.id is a 32-bit INTEGER column


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


def check_database_url(url: str, variable: str = "LIVERMORE_DATABASE_URL") -> str:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        raise ValueError(
            f"{variable}={mask_url(url)[:80]} is not a supported database URL; use "
            "sqlite:///path/to/file.db or postgresql+psycopg2://user:password@host:5432/dbname"
        )
    if scheme == "postgresql":
        # dagster-postgres and Livermore both talk psycopg2; say so explicitly for SQLAlchemy 2.1
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    if scheme.startswith("postgresql"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"{variable} is not a valid URL ({exc}); "
                             "use postgresql+psycopg2://user:password@host:5432/dbname") from None
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"{variable}={mask_url(url)[:80]} names no host or database; "
                             "use postgresql+psycopg2://user:password@host:5432/dbname")
    return url


def check_redis_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"LIVERMORE_REDIS_URL is not a valid URL ({exc}); use redis://host:6379/0") from None
    if parts.scheme not in REDIS_SCHEMES or (parts.scheme != "unix" and not parts.hostname):
        raise ValueError(
            f"LIVERMORE_REDIS_URL={mask_url(url)[:80]} is not a Redis URL; use redis://host:6379/0, "
            "or unset it to let Livermore start its own Redis server"
        )
    db = parts.path.strip("/") if parts.scheme != "unix" else ""
    if db and not (db.isdigit() and int(db) < 10_000):
        raise ValueError(f"LIVERMORE_REDIS_URL: the database number {shown(db, 20)} is not a number; "
                         "use redis://host:6379/0 (0 is the default database)")
    return url


def check_endpoint(url: str, variable: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{variable}={shown(mask_url(url))} is not a valid URL ({exc}); "
                         f"use e.g. {schemes[-1]}://host:port, or unset it to use the exchange's own") from None
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{variable}={shown(mask_url(url))} is not a {'/'.join(schemes)} URL; "
                         f"use e.g. {schemes[-1]}://host:port, or unset it to use the exchange's own")
    return url.strip()


def parse_user_id(value: Any, what: str) -> int:
    text = str(value).strip()
    if not (text.isdigit() and len(text) <= 10 and 0 < int(text) <= MAX_USER_ID):
        raise ValueError(f"{what}={shown(value, 30)} is not a user id; use a positive integer up to {MAX_USER_ID}")
    return int(text)


def check_seconds(value: Any, variable: str, low: float, high: float, default: str) -> float:
    """A number of seconds in [low, high]."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and low <= seconds <= high):
        raise ValueError(f"{variable}={shown(value)} must be a number of seconds from {low:g} to {high:g} "
                         f"(default {default})")
    return seconds


def check_port(value: Any, variable: str, zero_means: str) -> int:
    """A TCP port number, or 0 (`zero_means` says for what)."""
    text = str(value).strip()
    port = int(text) if text.isdigit() and len(text) <= 5 else -1
    if not 0 <= port <= 65535:
        raise ValueError(f"{variable}={shown(value)} must be a port number from 1 to 65535, or 0 (or unset) "
                         f"{zero_means}")
    return port
