"""The worker fixtures (a migrated database per test, worker subprocesses) for the hostile tests."""

from tests.worker.conftest import migrated_db_template, start_worker, worker_env  # noqa: F401
