"""The black-box table: every figure next to its baseline measured in the same run, as a ratio,
80 columns wide. Pure formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH = 80


@dataclass
class Row:
    label: str
    value: float | None
    unit: str                  # how the value is shown: "/s", "ms", "KB", "MB"
    baseline: float | None = None
    baseline_name: str = ""    # e.g. "ceiling", "cryptofeed"
    goal: str = ""
    note: str = ""             # shown under the table (lost closes, skipped peers, ...)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline or math.isnan(self.value) or math.isnan(self.baseline):
            return None
        return self.value / self.baseline


def number(x: float | None, unit: str) -> str:
    if x is None or math.isnan(x):
        return "-"
    if unit == "/s":
        return f"{x:,.0f}"
    if unit in ("KB", "MB") or x < 100:
        return f"{x:,.2f}" if x < 10 else f"{x:,.1f}"
    return f"{x:,.0f}"


def render(rows: list[Row], title: str) -> str:
    head = f"{'figure':<30}{'livermore':>10} {'baseline (same run)':>20} {'ratio':>6} {'goal':<11}"
    lines = [*wrap(title), "=" * WIDTH, head, "-" * WIDTH]
    notes = []
    for r in rows:
        base = f"{r.baseline_name} {number(r.baseline, r.unit)}" if r.baseline_name else ""
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
        label = f"{r.label} ({r.unit})"
        mark = ""
        if r.note:
            notes.append(r.note)
            mark = f"[{len(notes)}]"
        lines.append(f"{label[:30]:<30}{number(r.value, r.unit) + mark:>10} {base[-20:]:>20} {ratio:>6} "
                     f"{r.goal[:11]:<11}".rstrip())
    lines.append("-" * WIDTH)
    for i, note in enumerate(notes, 1):
        lines.extend(wrap(f"[{i}] {note}"))
    return "\n".join(lines)


def wrap(text: str, width: int = WIDTH, indent: str = "    ") -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = indent + word
        else:
            line = f"{line} {word}" if line else word
    if line:
        out.append(line)
    return out
