import json

import pytest

from tests.helpers.commands import clean_env, run_livermore


def run(args, env_extra, timeout=60):
    return run_livermore(args, clean_env(env_extra), timeout=timeout)


@pytest.fixture
def env(tmp_path, database_url, redis_url):
    return {"LIVERMORE_HOME": str(tmp_path / "home"), "LIVERMORE_DATABASE_URL": database_url,
            "LIVERMORE_REDIS_URL": redis_url}


def test_db_upgrade_then_status_lists_the_exchanges(env):
    up = run(["db", "upgrade"], env)
    assert up.returncode == 0, up.stderr
    assert "3 exchange row(s) seeded" in up.stdout
    st = run(["status", "--json"], env)
    assert st.returncode == 0, st.stderr
    rows = json.loads(st.stdout)["exchanges"]
    assert [(r["name"], r["connection_state"]) for r in rows] == [
        ("coinbase", "idle"), ("binance", "idle"), ("binance_us", "idle")]
    table = run(["status"], env)
    assert table.returncode == 0
    for name in ("Coinbase Advanced Trade", "Binance.US", "idle"):
        assert name in table.stdout
    cur = run(["db", "current"], env)
    assert "current: 0002" in cur.stdout
    unconfirmed = run(["db", "downgrade"], env)  # every table would go: not without saying so
    assert unconfirmed.returncode == 2 and "pass the revision `base` or --yes" in unconfirmed.stderr
    assert "current: 0002" in run(["db", "current"], env).stdout
    down = run(["db", "downgrade", "--yes"], env)
    assert down.returncode == 0, down.stderr
    again = run(["status"], env)
    assert again.returncode == 2
    assert "livermore db upgrade" in again.stderr


def test_status_shows_live_state_from_redis(env, redis_client):
    assert run(["db", "upgrade"], env).returncode == 0
    redis_client.hset("exchange:2:status", mapping={"connection_state": "connected",
                                                     "connected_at": "2026-11-24T10:00:00+00:00"})
    rows = json.loads(run(["status", "--json"], env).stdout)["exchanges"]
    assert rows[1]["connection_state"] == "connected"
    assert rows[1]["connected_at"] == "2026-11-24T10:00:00+00:00"


@pytest.mark.parametrize(
    ("env_extra", "needle"),
    [
        ({"LIVERMORE_DATABASE_URL": "mysql://nope"}, "not a supported database URL"),
        ({"LIVERMORE_REDIS_URL": "ftp://x"}, "not a Redis URL"),
        ({"LIVERMORE_DATABASE_URL": "postgresql+psycopg2://u:topsecret@127.0.0.1:1/db"}, "unreachable"),
    ],
)
def test_bad_settings_exit_2_with_one_line(tmp_path, env_extra, needle):
    res = run(["status"], {"LIVERMORE_HOME": str(tmp_path), **env_extra})
    assert res.returncode == 2
    assert needle in res.stderr
    assert "Traceback" not in res.stderr
    assert "topsecret" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_unwritable_home_exit_2(tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    res = run(["db", "upgrade"], {"LIVERMORE_HOME": str(f / "x")})
    assert res.returncode == 2 and "not a writable directory" in res.stderr


def test_no_command_prints_help():
    res = run([], {})
    assert res.returncode == 2
    assert "db" in res.stdout and "status" in res.stdout and "up" in res.stdout


def test_down_stops_the_embedded_redis(tmp_path):
    from streaming.redis_server import embedded_redis_url, ensure_embedded_redis

    home = tmp_path / "home"
    url = ensure_embedded_redis(home)
    assert url
    res = run(["down"], {"LIVERMORE_HOME": str(home)})
    assert res.returncode == 0 and "stopped" in res.stdout
    assert embedded_redis_url(home) is None


def test_status_with_a_live_worker_of_an_exchange_redis_does_not_name(env, redis_client):
    """A worker heartbeat naming an exchange that Dagster has not synced yet (no id in Redis)."""
    import time
    from datetime import UTC, datetime

    assert run(["db", "upgrade"], env).returncode == 0
    now = datetime.now(UTC).isoformat()
    beat = {"worker_id": "w1", "host": "h", "pid": 1, "started_at": now, "last_heartbeat": now,
            "exchanges": {"binance": "connected"}, "shard": None, "ts": time.time()}
    redis_client.hset("workers", "w1", json.dumps(beat))
    redis_client.set("worker:w1:heartbeat", json.dumps(beat), ex=15)
    res = run(["status", "--json"], env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["redis"] is True
    assert [r["name"] for r in out["exchanges"]] == ["coinbase", "binance", "binance_us"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["start", "nope", "--timeout", "2"], "unknown exchange 'nope'; known exchanges: binance, binance_us, coin"),
        (["stop", "krakken", "--timeout", "2"], "unknown exchange 'krakken'"),
        (["worker", "--autostart", "nope"], "unknown exchange 'nope'"),
        (["db", "downgrade", "zzz"], "migration to 'zzz' failed"),
        (["db", "upgrade", "zzz"], "migration to 'zzz' failed"),
    ],
)
def test_bad_names_exit_2_with_one_line(env, args, needle):
    assert run(["db", "upgrade"], env).returncode == 0
    res = run(args, env, timeout=30)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr
    assert "Traceback" not in res.stderr


def test_start_without_a_worker_says_how_to_start_one(env):
    assert run(["db", "upgrade"], env).returncode == 0
    res = run(["start", "coinbase", "--timeout", "1"], env, timeout=30)
    assert res.returncode == 1
    assert "no worker is running" in res.stdout + res.stderr
    assert "livermore worker" in res.stdout + res.stderr
