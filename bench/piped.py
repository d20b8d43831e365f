"""A helper process the bench talks to over a pipe: started, awaited until it says "ready",
asked to "stop" at the end (terminated if it does not). bench/subscriber.py and
bench/close_watch.py are such processes."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from typing import Any


class PipedProcess:
    def __init__(self, target: Callable[..., Any], *args: Any) -> None:
        self.pipe, child = multiprocessing.Pipe()
        self.proc = multiprocessing.Process(target=target, args=(*args, child), daemon=True)

    def start(self, timeout: float, failure: str) -> None:
        """Start it and wait until it is ready; RuntimeError(`failure`) if it is not within `timeout` s."""
        self.proc.start()
        if not self.pipe.poll(timeout) or self.pipe.recv() != "ready":
            raise RuntimeError(failure)

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None, "started"
        return self.proc.pid

    def stop(self) -> None:
        try:
            self.pipe.send("stop")
        except OSError:
            pass
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
