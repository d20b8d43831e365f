"""bench_staging's parts (no timed test): a measured run stages real closes and prints its
median, and callgrind's count is read from its output."""

from __future__ import annotations

import pytest

from bench.bench_staging import ROOT, collected, run


def test_a_run_stages_closes_and_prints_its_median():
    done = run(ROOT, "5", "30", "2")
    assert float(done.stdout) > 0


def test_callgrinds_count_is_read_and_its_absence_is_an_error():
    out = "==1== Events    : Ir\n==1== Collected : 123456789\n==1==\n==1== I   refs:      123,456,789\n"
    assert collected(out) == 123_456_789
    with pytest.raises(ValueError, match="Collected"):
        collected("==1== no summary\n")
