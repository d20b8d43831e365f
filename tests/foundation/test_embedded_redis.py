import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis

from streaming.redis_clients import sync_client
from streaming.redis_server import (
    ACL_USER,
    embedded_redis_url,
    ensure_embedded_redis,
    ping,
    state_file,
    stop_embedded_redis,
)
from tests.servers import find_runuser


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    stop_embedded_redis(home)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_embedded_redis_starts_once_is_shared_and_stops(home):
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(ensure_embedded_redis(home))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(urls)) == 1, "concurrent first uses must share one server"
    url = urls[0]
    assert url.startswith(f"redis://{ACL_USER}:") and "@127.0.0.1:" in url
    state = json.loads(state_file(home).read_text())
    assert state["port"] == _port(url) and state["password"] in url
    client = redis.Redis.from_url(url)
    client.set("shared", "yes")
    client.close()
    # a later process finds the same server
    assert ensure_embedded_redis(home) == url
    assert embedded_redis_url(home) == url
    assert stop_embedded_redis(home) is True
    assert not ping(url)
    assert embedded_redis_url(home) is None
    assert stop_embedded_redis(home) is False


def test_embedded_redis_is_persistent_across_restart(home):
    url = ensure_embedded_redis(home)
    client = redis.Redis.from_url(url)
    client.xadd("stream:alerts", {"json": "{}"})
    client.close()
    stop_embedded_redis(home)  # SIGTERM: the server writes its append-only file as it goes
    url2 = ensure_embedded_redis(home)
    assert url2 == url, "same port, same password"
    client = redis.Redis.from_url(url2)
    assert client.xlen("stream:alerts") == 1
    client.close()


def test_without_the_password_nothing_and_with_it_no_administration(home):
    url = ensure_embedded_redis(home)
    anonymous = redis.Redis(host="127.0.0.1", port=_port(url), socket_timeout=2)
    with pytest.raises((redis.AuthenticationError, redis.ResponseError)):
        anonymous.execute_command("GET", "x")
    anonymous.close()
    client = redis.Redis.from_url(url)
    try:
        assert client.set("k", "v")
        for command in (["CONFIG", "SET", "dir", "/tmp"], ["SHUTDOWN"], ["MODULE", "LIST"], ["DEBUG", "SLEEP", "0"],
                        ["ACL", "SETUSER", "x", "on"], ["REPLICAOF", "127.0.0.1", "1"], ["MONITOR"]):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
        assert client.ping()
    finally:
        client.close()
    secret = json.loads(state_file(home).read_text())["password"]
    for name in ("redis.conf", "users.acl"):  # only the hash: the file is not the key
        assert secret not in (home / "redis" / name).read_text()


def test_a_dead_server_comes_back_on_the_same_port_and_clients_reconnect(home):
    url = ensure_embedded_redis(home)
    client = sync_client(url)
    client.set("survives", "1")
    time.sleep(1.2)  # appendfsync everysec
    pid = int((home / "redis" / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while ping(url) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert embedded_redis_url(home) is None
    assert ensure_embedded_redis(home) == url  # whoever finds it dead restarts it, same port and password
    assert client.get("survives") == "1"  # the old client reconnects by itself
    client.close()


def test_home_files_are_private(tmp_path):
    from tests.helpers.commands import clean_env, run_livermore

    home = tmp_path / "fresh" / "home"
    res = run_livermore(["redis-url"], clean_env({"LIVERMORE_HOME": str(home)}))
    try:
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith(f"redis://{ACL_USER}:") and ping(res.stdout.strip())
        masked = run_livermore(["redis-url", "--masked"], clean_env({"LIVERMORE_HOME": str(home)}))
        assert ":***@127.0.0.1:" in masked.stdout
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for path in home.rglob("*"):
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    finally:
        stop_embedded_redis(home)


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([find_runuser() or "runuser", "-u", "nobody", "--", *cmd], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.skipif(os.geteuid() != 0 or not find_runuser(),
                    reason="needs root and runuser to act as a second local user (nobody)")
def test_another_local_user_can_neither_use_the_redis_nor_read_the_home():
    try:
        import pwd

        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    # a parent every user can traverse: only Livermore's own modes may keep `nobody` out
    base = Path(tempfile.mkdtemp(prefix="livermore-perm-"))
    base.chmod(0o755)
    home = base / "home"
    try:
        url = ensure_embedded_redis(home)
        port = _port(url)
        # RESP by hand from bash: the second user has no Python of ours
        script = (f"exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'CONFIG GET dir\\r\\nGET k\\r\\n' >&3; "
                  "read -t 5 a <&3; read -t 5 b <&3; echo \"$a|$b\"")
        talk = _as_nobody("bash", "-c", script)
        assert talk.stdout.count("NOAUTH") == 2, (talk.stdout, talk.stderr)
        for target in (home / "redis" / "server.json", home / "redis" / "appendonly.aof"):
            read = _as_nobody("cat", str(target))
            assert read.returncode != 0 and "Permission denied" in read.stderr, (target, read)
        listing = _as_nobody("ls", str(home))
        assert listing.returncode != 0 and "Permission denied" in listing.stderr
    finally:
        stop_embedded_redis(home)
        shutil.rmtree(base, ignore_errors=True)


def test_a_worker_follows_its_embedded_redis_through_a_restart(tmp_path):
    """No split brain: the restarted server is on the same port, so the running worker reconnects and
    `livermore workers` sees it again (before, the next command started a server on another port)."""
    from streaming.control.heartbeat import live_workers
    from tests.helpers.commands import WORKER, clean_env, run_livermore
    from tests.servers import wait_for

    home = tmp_path / "home"
    env = clean_env({"LIVERMORE_HOME": str(home)})
    assert run_livermore(["db", "upgrade"], env).returncode == 0
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen([*WORKER, "--worker-id", "follower"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = embedded_redis_url(home) or wait_for(lambda: embedded_redis_url(home), timeout=20,
                                                    message="the embedded server")
        client = sync_client(url)

        def beating_since(t: float):
            from datetime import datetime

            try:
                found = [w for w in live_workers(client) if w["worker_id"] == "follower"]
            except redis.RedisError:
                return False
            return bool(found) and datetime.fromisoformat(found[0]["last_heartbeat"]).timestamp() > t

        wait_for(lambda: beating_since(0), timeout=30, message="the worker's first heartbeat")
        os.kill(int((home / "redis" / "redis.pid").read_text()), signal.SIGKILL)
        wait_for(lambda: not ping(url), timeout=5, message="the server to die")
        restarted = run_livermore(["redis-url"], env)  # any command finds it dead and restarts it
        assert restarted.stdout.strip() == url
        back = time.time()
        wait_for(lambda: beating_since(back), timeout=30, message="a heartbeat after the restart")
        workers = run_livermore(["workers", "--json"], env)
        assert "follower" in workers.stdout
        assert worker.poll() is None
        client.close()
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()
        stop_embedded_redis(home)
