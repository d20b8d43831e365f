"""A migrated SQLite database per test (copied from one migrated once) and worker subprocesses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.commands import clean_env
from tests.worker.proc import WorkerProcess


@pytest.fixture(scope="session")
def migrated_db_template(tmp_path_factory) -> Path:
    from streaming.db.migrate import upgrade

    path = tmp_path_factory.mktemp("worker-db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def worker_env(tmp_path: Path, redis_url: str, migrated_db_template: Path) -> dict[str, str]:
    db = tmp_path / "livermore.db"
    shutil.copy(migrated_db_template, db)
    return clean_env({
        "LIVERMORE_HOME": str(tmp_path / "home"),
        "LIVERMORE_REDIS_URL": redis_url,
        "LIVERMORE_DATABASE_URL": f"sqlite:///{db}",
        "LIVERMORE_UNIVERSE_CHECK_S": "0.5",
    })


@pytest.fixture
def start_worker(worker_env):
    started: list[WorkerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> WorkerProcess:
        proc = WorkerProcess(list(args), env or worker_env)
        started.append(proc)
        proc.start()
        if wait:
            proc.wait_heartbeat()
        return proc

    yield start
    for proc in started:
        proc.stop()
