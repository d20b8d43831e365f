"""Session-wide real servers and per-test clean databases (see tests/servers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from streaming.sim.config import PACKAGED_RECORDINGS
from tests import servers

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Test data of the repository (tests/fixtures/README.md): OHLCV series and recorded REST bodies."""
    return FIXTURES


@pytest.fixture(scope="session")
def recordings_dir() -> Path:
    """The real recordings the simulator serves, shipped as package data (streaming/sim/data/README.md)."""
    return PACKAGED_RECORDINGS


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    with servers.redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """A real Redis server, flushed before each test."""
    client = redis.Redis.from_url(redis_server_url)
    client.flushall()
    client.close()
    return redis_server_url


@pytest.fixture
def redis_client(redis_url: str):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    with servers.postgres_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> str:
    """A fresh, empty PostgreSQL database."""
    return servers.create_database(postgres_admin_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'livermore.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> str:
    """A fresh, empty database; every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'livermore.db'}"
    return servers.create_database(request.getfixturevalue("postgres_admin_url"))


@pytest.fixture(scope="session", autouse=True)
def _reap_spawned_workers():
    """Workers spawned through ensure_worker_running outlive their spawner by design; not the suite."""
    yield
    from streaming.control.spawn import stop_spawned_workers

    stop_spawned_workers(timeout=15)
