"""bench_storm_ab's parts (no timed test): the summary's medians and ratios, and a worker run
from another source tree really imports `streaming` from that tree."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.bench_storm_ab import Side, summary
from bench.processes import Platform, Worker

ROOT = Path(__file__).resolve().parents[2]


def test_the_summary_gives_medians_and_this_tree_as_a_ratio_to_the_other():
    this = Side("this tree", [(90.0, 60.0), (110.0, 70.0), (100.0, 80.0)])
    other = Side("/tmp/old", [(120.0, 75.0), (125.0, 100.0), (130.0, 80.0), (300.0, 90.0)])
    lines = summary(this, other, 2_000)
    assert lines[0] == "2,000 closes at once, 3 storms each, alternating:"
    assert lines[1] == "  this tree: last event median 100.0 ms, p50 70.0 ms"
    assert lines[2] == "    every storm's last event (ms, sorted): 90 100 110"
    assert lines[3] == "  /tmp/old: last event median 127.5 ms, p50 85.0 ms"
    assert lines[-1] == "this tree / other: last 0.784, p50 0.824"
    assert all(len(line) <= 80 for line in lines)


def test_a_worker_from_another_tree_imports_streaming_from_there(tmp_path):
    tree = tmp_path / "tree"
    (tree / "streaming" / "cli").mkdir(parents=True)
    (tree / "streaming" / "__init__.py").write_text("")
    (tree / "streaming" / "cli" / "__init__.py").write_text(
        "def main(argv):\n    print('other tree', argv)\n    return 3\n")
    worker = Worker(Platform(tmp_path / "platform"), 2, "ws://127.0.0.1:9", "http://127.0.0.1:9", tree)
    done = subprocess.run(worker.args, env=worker.env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("other tree ['worker', '--worker-id', ")
    assert "'--autostart', 'binance', '--no-warmup', '--symbols', 'binance=" in done.stdout
