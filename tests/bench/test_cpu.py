"""The storms' CPU accounting (bench/processes.py CpuMeter, the black box's CPU/cores row): CPU
time is read from /proc as the kernel counts it, so nothing here depends on the machine's speed."""

from __future__ import annotations

import subprocess
import sys

from bench.bench_blackbox import cpu_row
from bench.processes import CpuMeter, cpu_ms
from bench.scenarios import Storm

# says how much CPU it has used, waits for a line, spins 0.3 s of CPU more, says it again, waits
SPIN = ("import sys, time\n"
        "print(time.process_time(), flush=True)\n"
        "sys.stdin.readline()\n"
        "start = time.process_time()\n"
        "while time.process_time() < start + 0.3: pass\n"
        "print(time.process_time(), flush=True)\n"
        "sys.stdin.readline()\n")


def test_a_process_cpu_time_is_what_it_says_it_used():
    child = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        before = float(child.stdout.readline()) * 1000
        meter = CpuMeter({"spinner": [child.pid], "gone": [2**22 + 7]})  # no such pid: counts 0
        meter.start()
        child.stdin.write("go\n")
        child.stdin.flush()
        after = float(child.stdout.readline()) * 1000
        taken = meter.taken()
        # what it spun, give or take the few instructions between its reading the clock and ours
        assert abs(taken["spinner"] - (after - before)) <= 10, (taken, after - before)
        assert after - before >= 300 and taken["gone"] == 0
        assert abs(cpu_ms(child.pid) - after) <= 10  # the whole process's, its start-up included
    finally:
        child.communicate("\n")


def storm(last: float, **cpu: float) -> Storm:
    return Storm(last, last / 2, 0, dict(cpu))


def test_cpu_row_is_the_median_total_over_the_cores_and_names_each_process():
    # the medians of the parts (280 + 210) do not add up to the median total (500): both are shown
    ours = [storm(300, worker=300, Redis=200), storm(310, worker=250, Redis=260), storm(290, worker=280, Redis=210)]
    theirs = [storm(400, cryptofeed=500, Redis=100), storm(420, cryptofeed=520, Redis=120)]
    row = cpu_row(7_500, ours, theirs, cores=2)
    assert row.value == 500 / 2  # totals 500, 510, 490
    assert row.baseline == (600 + 640) / 2 / 2 and row.baseline_name == "cryptofeed"
    assert "medians worker 280, Redis 210; median total 500 ms" in row.note
    assert "medians cryptofeed 510, Redis 110; median total 620 ms" in row.note and "2 cores" in row.note
    alone = cpu_row(2_000, ours, [], cores=2)
    assert alone.baseline is None and "cryptofeed" not in alone.note
    scripted = [Storm(300, 150, 0, {"worker": 1.0}, script_ms=s) for s in (40.0, 60.0, 50.0)]
    assert "(Redis in the close script 50)" in cpu_row(2_000, scripted, [], cores=2).note
