"""The streaming worker stays light: importing the pipeline and the worker never loads pandas
(the batch MACD-V reference is imported only by tests, benchmarks and batch jobs), nor the
Prometheus client (only a worker serving /metrics imports it)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import streaming.pipeline, streaming.worker.worker
heavy = sorted(m for m in ("pandas", "numpy", "prometheus_client") if m in sys.modules)
print(",".join(heavy))
"""


def test_worker_and_pipeline_import_without_pandas():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    assert "pandas" not in out.stdout.strip().split(","), out.stdout
    # the Prometheus client is imported only when the worker serves /metrics (LIVERMORE_METRICS_PORT)
    assert "prometheus_client" not in out.stdout.strip().split(","), out.stdout


def test_batch_macd_v_is_still_importable_from_its_own_module():
    from streaming.indicators.macd_v_batch import macd_v_frame, macd_v_series

    assert callable(macd_v_frame) and callable(macd_v_series)


IDLE = """
import sys
import streaming.worker.worker
print(",".join(sorted(m for m in ("streaming.pipeline.core", "streaming.worker.metrics", "prometheus_client")
                      if m in sys.modules)))
"""


def test_an_idle_worker_imports_neither_the_pipeline_nor_the_metrics_server():
    # the pipeline comes with the first exchange started, /metrics with LIVERMORE_METRICS_PORT
    out = subprocess.run([sys.executable, "-c", IDLE], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "", out.stdout
