"""The `livermore` CLI and the worker as subprocesses, with an environment free of the caller's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

# `livermore ...` without relying on the console script being on PATH
LIVERMORE = [sys.executable, "-c", "from streaming.cli import main; raise SystemExit(main())"]
WORKER = [sys.executable, "-m", "streaming"]


def clean_env(extra: Mapping[str, str] | None = None, drop: tuple[str, ...] = ("LIVERMORE_",)) -> dict[str, str]:
    """os.environ without variables starting with `drop` (the developer's own settings), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(extra or {})
    return env


def run_livermore(args: list[str], env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*LIVERMORE, *args], env=dict(env), capture_output=True, text=True, timeout=timeout)


def run_worker(args: list[str], env: Mapping[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*WORKER, *args], env=dict(env), capture_output=True, text=True, timeout=timeout)
