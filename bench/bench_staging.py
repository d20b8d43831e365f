"""Staging one close in one process: time, and instructions where times are too noisy.

    .venv/bin/python bench/bench_staging.py [--src OTHER_SRC] [--streams 2000] [--bars 60]
                                            [--repeats 3] [--instructions]

`stage_close` (streaming.pipeline.staging: MACD-V, the alert rules and the close script's spec)
over `--streams` 5m streams seeded with `--bars` closed bars each, then 15 rounds of one close
per stream; a run prints the median µs per close over its rounds. Each run is a process of its
own. With `--src`, a source tree holding `streaming/` (e.g. `git archive <commit> streaming |
tar -x -C DIR`) is measured in alternation with this tree, `--repeats` runs each, and this
tree's median is printed as a ratio to the other's: the baseline measured in the same run.

On a shared machine the same run takes 10 µs a close one minute and 19 the next.
`--instructions` (needs valgrind) also counts the instructions a close costs, with callgrind: a
run of 300 streams with 10 measured rounds minus the same run with none, divided by 3,000
closes. Deterministic to a few instructions: a change of 1 % shows.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.processes import source_tree  # imports no streaming: a child imports its tree's

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 15
INSTR_STREAMS, INSTR_BARS, INSTR_ROUNDS = 300, 40, 10


def child(src: Path, streams: int, bars: int, rounds: int) -> None:
    """One measured process (runs with `--child`): prints the median µs per close."""
    sys.path.insert(0, str(src))
    import time

    from bench.staged import bar, stream_heads
    from streaming.pipeline.staging import stage_close
    from streaming.pipeline.state import StreamState

    heads = stream_heads(streams)
    states = [StreamState() for _ in range(streams)]
    # every candle made before anything is measured (also those of rounds a run skips)
    rows = [[bar(i, b) for i in range(streams)] for b in range(bars + max(rounds, INSTR_ROUNDS))]
    for b in range(bars):
        for i in range(streams):
            stage_close(states[i], heads[i], rows[b][i], "websocket", 300_000)
    times = []
    for b in range(bars, bars + rounds):
        row = rows[b]
        start = time.perf_counter()
        for i in range(streams):
            stage_close(states[i], heads[i], row[i], "websocket", 300_000)
        times.append((time.perf_counter() - start) / streams * 1e6)
    print(f"{statistics.median(times) if times else 0.0:.3f}")


def run(src: Path, *args: str, under: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*(under or []), sys.executable, str(Path(__file__).resolve()), "--child", str(src), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
                          timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{done.stderr[-2000:]}")
    return done


def collected(callgrind_stderr: str) -> int:
    """The instruction count callgrind reports ("Collected : N")."""
    found = re.findall(r"Collected\s*:\s*(\d+)", callgrind_stderr)
    if not found:
        raise ValueError("no 'Collected :' line in callgrind's output")
    return int(found[-1])


def instructions(src: Path) -> float:
    callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    base = (str(INSTR_STREAMS), str(INSTR_BARS))
    without = collected(run(src, *base, "0", under=callgrind).stderr)
    with_rounds = collected(run(src, *base, str(INSTR_ROUNDS), under=callgrind).stderr)
    return (with_rounds - without) / (INSTR_STREAMS * INSTR_ROUNDS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=source_tree, metavar="OTHER_SRC", help="also measure this source tree's streaming/")
    ap.add_argument("--streams", type=int, default=2000, help="streams staged (2000)")
    ap.add_argument("--bars", type=int, default=60, help="closed bars each stream is seeded with (60)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each tree (3)")
    ap.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        streams, bars, rounds = (int(x) for x in args.child_args)
        child(args.child, streams, bars, rounds)
        return
    trees = [("this tree", ROOT)]
    if args.src is not None:
        trees.append((str(args.src), args.src.resolve()))
    if args.instructions and shutil.which("valgrind") is None:
        ap.error("--instructions needs valgrind (apt-get install valgrind)")
    times: dict[str, list[float]] = {name: [] for name, _ in trees}
    for _ in range(args.repeats):
        for name, src in trees:
            times[name].append(float(run(src, str(args.streams), str(args.bars), str(ROUNDS)).stdout))
    print(f"stage_close, {args.streams:,} streams seeded with {args.bars} bars, median of {ROUNDS} rounds "
          f"a run, {args.repeats} runs")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"  {name}: {medians[name]:.2f} µs a close (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    counts = {name: instructions(src) for name, src in trees} if args.instructions else {}
    for name, n in counts.items():
        print(f"  {name}: {n:,.0f} instructions a close (callgrind, {INSTR_STREAMS} streams)")
    if args.src is not None:
        this, other = trees[0][0], trees[1][0]
        line = f"this tree / other: time {medians[this] / medians[other]:.3f}"
        if counts:
            line += f", instructions {counts[this] / counts[other]:.3f}"
        print(line)


if __name__ == "__main__":
    main()
