"""A `python -m streaming` worker as a real subprocess, with its log for failure messages."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import uuid

import redis

from streaming.control.heartbeat import live_workers
from tests.helpers.commands import WORKER
from tests.servers import wait_for


class WorkerProcess:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.worker_id = None
        if "--worker-id" not in args:
            self.worker_id = f"test-{uuid.uuid4().hex[:8]}"
            args = [*args, "--worker-id", self.worker_id]
        else:
            self.worker_id = args[args.index("--worker-id") + 1]
        self.args = args
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process

    def start(self) -> None:
        self.proc = subprocess.Popen([*WORKER, *self.args], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.env["LIVERMORE_REDIS_URL"], decode_responses=True)

    def heartbeat(self) -> dict | None:
        client = self.redis()
        try:
            return next((w for w in live_workers(client) if w["worker_id"] == self.worker_id), None)
        finally:
            client.close()

    def wait_heartbeat(self, timeout: float = 20.0) -> dict:
        def ready():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            return self.heartbeat()

        return wait_for(ready, timeout=timeout, message=f"heartbeat of {self.worker_id}")

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"worker ignored SIGTERM for {timeout}s:\n{self.log()}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
