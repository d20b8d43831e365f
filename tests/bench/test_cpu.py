"""The storms' CPU accounting (bench/processes.py CpuMeter, the black box's CPU/cores row): CPU
time is read from /proc as the kernel counts it, so nothing here depends on the machine's speed."""

from __future__ import annotations

import subprocess
import sys

from bench.bench_blackbox import cpu_row
from bench.processes import CpuMeter, cpu_ms
from bench.scenarios import Storm

# spins until it has used 0.3 s of CPU, says how much it used, then waits without using any
SPIN = ("import sys, time\n"
        "while time.process_time() < 0.3: pass\n"
        "print(time.process_time(), flush=True)\n"
        "sys.stdin.read()\n")


def test_a_process_cpu_time_is_what_it_says_it_used():
    child = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        meter = CpuMeter({"spinner": [child.pid], "gone": [2**22 + 7]})  # no such pid: counts 0
        meter.start()
        assert child.stdout is not None
        used_ms = float(child.stdout.readline()) * 1000
        taken = meter.taken()
        # its whole CPU time includes the interpreter's start-up, which process_time counts too
        assert used_ms - 5 <= cpu_ms(child.pid) <= used_ms + 100
        assert 0 <= taken["spinner"] <= cpu_ms(child.pid) and taken["gone"] == 0
    finally:
        child.communicate("")


def storm(last: float, **cpu: float) -> Storm:
    return Storm(last, last / 2, 0, dict(cpu))


def test_cpu_row_is_the_median_total_over_the_cores_and_names_each_process():
    ours = [storm(300, worker=260, Redis=220, subscriber=60), storm(310, worker=280, Redis=240, subscriber=70),
            storm(290, worker=250, Redis=200, subscriber=50)]
    theirs = [storm(400, cryptofeed=500, Redis=100), storm(420, cryptofeed=520, Redis=120)]
    row = cpu_row(7_500, ours, theirs, cores=2)
    assert row.value == 540 / 2  # totals 540, 590, 500: median 540
    assert row.baseline == (600 + 640) / 2 / 2 and row.baseline_name == "cryptofeed"
    assert "worker 260, Redis 220, subscriber 60; 540 ms in all" in row.note
    assert "cryptofeed 510, Redis 110; 620 ms in all" in row.note and "2 cores" in row.note
    alone = cpu_row(2_000, ours, [], cores=2)
    assert alone.baseline is None and "cryptofeed" not in alone.note
