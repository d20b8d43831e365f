"""`livermore notify` as real processes: every alert delivered exactly once through a clean restart
and through a kill -9 in the middle of a batch."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from streaming import keys
from streaming.notify import store
from streaming.notify.webhook import decode_body
from tests.helpers.commands import LIVERMORE, clean_env
from tests.notify.conftest import SECRET, make_alert, publish
from tests.servers import wait_for

pytestmark = pytest.mark.slow


class NotifyProcess:
    def __init__(self, env: dict[str, str], consumer: str) -> None:
        self.consumer = consumer
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*LIVERMORE, "notify", "--consumer", consumer, "--claim-idle-s", "1", "--lease-s", "2", "--reload-s", "1"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def wait_ready(self, redis_client, timeout: float = 30.0) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"notify exited with {self.proc.returncode}:\n{self.log()}")
            return redis_client.hexists(keys.NOTIFY_CONSUMERS, self.consumer)

        wait_for(ready, timeout=timeout, message=f"notify consumer {self.consumer}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        if code != 0:
            print(self.log())
        self._log.close()
        return code


@pytest.fixture
def env(redis_url, db_url, tmp_path: Path) -> dict[str, str]:
    return clean_env({"LIVERMORE_REDIS_URL": redis_url, "LIVERMORE_DATABASE_URL": db_url,
                      "LIVERMORE_HOME": str(tmp_path / "home"), "HOOK_SECRET": SECRET})


@pytest.fixture
def hook(engine, receiver) -> str:
    with engine.begin() as conn:
        store.add_subscription(conn, store.add_destination(conn, "hook", receiver.url("/hook"),
                                                           {"HOOK_SECRET": SECRET}, "HOOK_SECRET"))
    return "/hook"


def accepted_ids(receiver) -> Counter:
    return Counter(a.id for r in receiver.accepted("/hook") for a in decode_body(r.body).alerts)


def test_every_alert_once_through_a_restart(env, hook, receiver, redis_client):
    first = [make_alert(i, symbol="ETH-USD") for i in range(30)]
    while_down = [make_alert(i, symbol="SOL-USD") for i in range(30)]
    p1 = NotifyProcess(env, "n1")
    try:
        p1.wait_ready(redis_client)
        publish(redis_client, first)
        wait_for(lambda: len(accepted_ids(receiver)) == 30, timeout=30, message="30 alerts")
    finally:
        assert p1.stop() == 0
    assert not redis_client.hexists(keys.NOTIFY_CONSUMERS, "n1")  # a clean stop leaves the heartbeat table
    publish(redis_client, while_down)  # nobody runs: the group keeps them
    p2 = NotifyProcess(env, "n2")
    try:
        p2.wait_ready(redis_client)
        wait_for(lambda: len(accepted_ids(receiver)) == 60, timeout=30, message="60 alerts")
        wait_for(lambda: redis_client.xpending(keys.ALERTS_STREAM, keys.NOTIFY_GROUP)["pending"] == 0,
                 message="every entry acknowledged")
    finally:
        assert p2.stop() == 0
    counts = accepted_ids(receiver)
    assert set(counts) == {a.id for a in first + while_down} and max(counts.values()) == 1
    assert len(receiver.all("/hook")) == 60  # not one extra attempt


def test_every_alert_once_through_a_kill_9_mid_batch(env, hook, receiver, redis_client):
    before = [make_alert(i, symbol="ETH-USD") for i in range(20)]
    batch = [make_alert(i, symbol="ADA-USD") for i in range(20)]
    p1 = NotifyProcess(env, "k1")
    p2 = None
    try:
        p1.wait_ready(redis_client)
        publish(redis_client, before)
        wait_for(lambda: len(accepted_ids(receiver)) == 20, timeout=30, message="the first 20")
        receiver.hold(hook)  # the next sends reach the receiver and get no answer: mid-send
        publish(redis_client, batch)
        wait_for(lambda: receiver.held(hook) >= 1, timeout=30, message="sends in flight")
        p1.proc.send_signal(signal.SIGKILL)
        p1.proc.wait(10)
        in_flight = receiver.held(hook)
        receiver.release(hook, 503)  # what was in flight was never acknowledged to the dead process
        assert redis_client.xpending(keys.ALERTS_STREAM, keys.NOTIFY_GROUP)["pending"] >= in_flight
        p2 = NotifyProcess(env, "k2")
        p2.wait_ready(redis_client)
        wait_for(lambda: len(accepted_ids(receiver)) == 40, timeout=60, message="all 40 alerts")
        wait_for(lambda: redis_client.xpending(keys.ALERTS_STREAM, keys.NOTIFY_GROUP)["pending"] == 0,
                 message="every entry acknowledged")
    finally:
        p1.stop(signal.SIGKILL)
        if p2 is not None:
            assert p2.stop() == 0
    counts = accepted_ids(receiver)
    assert set(counts) == {a.id for a in before + batch} and max(counts.values()) == 1
    # the in-flight sends were retried by the new process under the same delivery id
    retried = [r for r in receiver.all("/hook") if r.status == 503]
    assert len(retried) == in_flight >= 1
    assert {json.loads(r.body)["alerts"][0]["id"] for r in retried} <= set(counts)
