"""The warm-up's progress while `livermore start` waits: a rich progress bar when stdout is a
terminal, plain lines on stderr otherwise (a log or a pipe gets one line every few seconds,
never a bar's control characters)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from streaming.cli._common import TERMINAL_WIDTH
from streaming.cli._present import duration, progress_words

PLAIN_EVERY_S = 5.0


class WarmUpDisplay:
    def __init__(self, exchange: str, terminal: bool | None = None, out: TextIO | None = None) -> None:
        self.exchange = exchange
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self.out = out or (sys.stdout if self.terminal else sys.stderr)
        self._bar: Any = None
        self._task: Any = None
        self._last_line = 0.0
        self._last: dict[str, Any] | None = None

    def update(self, progress: dict[str, Any]) -> None:
        self._last = progress
        if self.terminal:
            self._draw(progress)
            return
        now = time.monotonic()
        done = progress.get("streams_done", 0) >= progress.get("streams_total", 0)
        if now - self._last_line >= PLAIN_EVERY_S or done or self._last_line == 0.0:
            self._last_line = now
            print(f"{self.exchange}: {progress_words(progress)}", file=self.out, flush=True)

    def _draw(self, progress: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        total = max(1, int(progress.get("streams_total") or 0))
        eta = progress.get("eta_s")
        candles = progress.get("candles")
        fields = {"candles": f"{candles:,} candles" if isinstance(candles, int) else "",
                  "eta": duration(float(eta)) if isinstance(eta, int | float) else "?"}
        if self._bar is None:
            self._bar = Progress(
                TextColumn(f"{self.exchange} warm-up"), BarColumn(bar_width=24),
                TextColumn("{task.completed}/{task.total} streams"), TextColumn("{task.fields[candles]}"),
                TextColumn("ETA {task.fields[eta]}"),
                console=Console(file=self.out, width=TERMINAL_WIDTH), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("warm-up", total=total, **fields)
        self._bar.update(self._task, completed=int(progress.get("streams_done") or 0), total=total, **fields)

    def close(self) -> None:
        """Remove the bar (the answer that follows says how the warm-up ended)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
