"""An idle worker process stays light: with the `exchanges` mirror in Redis (what Dagster's
`exchanges` asset writes) it announces its exchanges and beats without importing SQLAlchemy,
the pipeline, the adapters' WebSocket client, the Prometheus client or pydantic (the settings are a
msgspec Struct). Which modules, not how
many MB: the RSS figure is measured by the benchmark (docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys

from streaming.db.engine import make_engine

# Runs `livermore worker` in this interpreter; once the worker's first heartbeat and every
# exchange's status hash (the announce, written by this worker) are in Redis, prints the heavy
# modules it has imported and stops.
RUN = """
import os, signal, sys, threading, time
import redis
from streaming import keys

HEAVY = ("sqlalchemy", "streaming.db.engine", "streaming.pipeline.core", "websockets", "aiohttp",
         "prometheus_client", "numpy", "pandas", "dagster", "pydantic", "pydantic_settings")
worker_id, ids = sys.argv[1], sys.argv[2].split(",")

def watch():
    r = redis.Redis.from_url(os.environ["LIVERMORE_REDIS_URL"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if r.hexists(keys.WORKERS, worker_id) and all(
                r.hget(keys.exchange_status(int(i)), "worker_id") == worker_id.encode() for i in ids):
            break
        time.sleep(0.05)
    else:
        print("TIMEOUT", flush=True)
    time.sleep(0.5)  # a beat or two more
    print("HEAVY:" + ",".join(m for m in HEAVY if m in sys.modules), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=watch, daemon=True).start()
from streaming.cli import main
sys.exit(main(["worker", "--worker-id", worker_id]))
"""


def _mirror_exchanges(database_url: str, redis_client) -> list[int]:
    """What the `exchanges` asset does (the same writer)."""
    from livermore_pipelines.store import mirror_exchanges

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = mirror_exchanges(conn, redis_client)
    finally:
        engine.dispose()
    return [int(row["id"]) for row in rows]


def test_an_idle_worker_process_imports_no_database_layer_pipeline_or_clients(worker_env, redis_client):
    ids = _mirror_exchanges(worker_env["LIVERMORE_DATABASE_URL"], redis_client)
    assert ids, "the migrated database seeds the exchanges"
    out = subprocess.run([sys.executable, "-c", RUN, "idle-imports", ",".join(map(str, ids))], env=worker_env,
                         capture_output=True, text=True, timeout=120)
    assert "HEAVY:" in out.stdout, out.stdout + out.stderr
    assert "TIMEOUT" not in out.stdout, out.stdout + out.stderr
    heavy = out.stdout.rsplit("HEAVY:", 1)[1].strip()
    assert heavy == "", f"an idle worker imported: {heavy}"
