"""What /metrics exports (pure, from readings), docs/metrics.md lists and the Grafana dashboard
queries: one set of names. And the same reading makes the stats snapshot."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from streaming.contracts.stats import ExchangeStats
from streaming.pipeline.close_meter import CloseMeter
from streaming.worker.measure import Reading, exchange_stats
from streaming.worker.metrics import METRICS, LivermoreCollector, families

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def reading(exchange: str = "coinbase", exchange_id: int = 1) -> Reading:
    meter = CloseMeter()
    meter.published([("5m", 0), ("5m", 300_000), ("1h", 0)], 601_500)  # lags 301.5 s, 1.5 s, 0 (clamped)
    meter.script_call(0.002)
    meter.script_call(0.004)
    counts = Counter({("frames",): 120, ("reconnects",): 2, ("streams_stale",): 3, ("streams_resubscribes",): 4,
                      ("rest_requests", "/api/v3/klines"): 7, ("rest_429", "/api/v3/klines"): 1,
                      ("malformed", "invalid_json"): 5, ("skipped", "unknown_symbol"): 6, ("corrections",): 8})
    return Reading(exchange, exchange_id, streams=15, stale=["SIM1-USD:5m"], counts=counts, closes=meter)


def exported(readings: list[Reading]) -> dict[tuple[str, tuple], float]:
    """The samples of a scrape of these readings, as Prometheus parses them."""
    class Fixed:
        def collect(self):
            return families(readings)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_a_worker_with_no_exchange_yet_exports_valid_empty_families():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LivermoreCollector({}))
    names = {fam.name for fam in text_string_to_metric_families(generate_latest(registry).decode())}
    assert {"livermore_streams", "livermore_close_lag_seconds", "livermore_frames_received"} <= names


def test_every_documented_metric_is_exported_with_its_labels_and_values():
    samples = exported([reading(), reading("binance", 2)])
    names = {name for name, _ in samples}
    for name, kind, labels, _ in METRICS:
        series = [name + s for s in SUFFIXES[kind]]
        assert set(series) <= names, name
        for s in series:
            for _, got in (k for k in samples if k[0] == s):
                assert {k for k, _ in got} - {"le", "quantile"} == set(labels), (s, got)
    v = lambda name, **labels: samples[(name, tuple(sorted(labels.items())))]  # noqa: E731
    assert v("livermore_frames_received_total", exchange="coinbase") == 120
    assert v("livermore_closes_published_total", exchange="binance", timeframe="5m") == 2
    assert v("livermore_close_lag_seconds_count", exchange="coinbase", timeframe="5m") == 2
    assert v("livermore_close_lag_seconds_sum", exchange="coinbase", timeframe="5m") == 303.0
    assert v("livermore_close_lag_seconds_bucket", exchange="coinbase", timeframe="5m", le="2.5") == 1
    assert v("livermore_close_lag_seconds_bucket", exchange="coinbase", timeframe="5m", le="300.0") == 1
    assert v("livermore_close_lag_seconds_bucket", exchange="coinbase", timeframe="5m", le="+Inf") == 2
    assert v("livermore_stale_streams", exchange="coinbase") == 1
    assert v("livermore_streams", exchange="coinbase") == 15
    assert v("livermore_rest_rate_limited_total", exchange="coinbase", endpoint="/api/v3/klines") == 1
    assert v("livermore_redis_script_seconds_count", exchange="coinbase") == 2
    assert abs(v("livermore_redis_script_seconds_sum", exchange="coinbase") - 0.006) < 1e-9
    assert v("livermore_malformed_frames_total", exchange="coinbase", kind="invalid_json") == 5
    assert v("livermore_skipped_frames_total", exchange="coinbase", kind="unknown_symbol") == 6
    assert not any("symbol" in dict(labels) for _, labels in samples)  # never a symbol label


def test_the_stats_snapshot_is_made_from_the_same_reading():
    r = reading()
    stats = exchange_stats(r, "w1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z")
    assert stats == ExchangeStats(
        worker_id="w1", since="2026-01-01T00:00:00Z", written_at="2026-01-01T00:00:05Z", streams=15,
        stale=["SIM1-USD:5m"], frames=120, closes={"1h": 1, "5m": 2}, close_lag_ms_p50=1500.0,
        close_lag_ms_p99=301_500.0, rest_requests=7, rest_429=1, reconnects=2, malformed_frames=5,
        skipped_frames=6, corrections=8)
    samples = exported([r])
    assert samples[("livermore_frames_received_total", (("exchange", "coinbase"),))] == stats.frames


def test_docs_list_exactly_the_exported_metrics():
    text = (ROOT / "docs" / "metrics.md").read_text()
    rows = re.findall(r"^\| `(livermore_[a-z_]+)` \| (\w+) \| ([a-z, ]+) \| (.+) \|$", text, re.M)
    assert [(n, k, tuple(labels.split(", ")), h) for n, k, labels, h in rows] == list(METRICS)


def test_the_dashboard_loads_and_queries_only_exported_documented_metrics():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "livermore.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert dashboard["title"] and len(dashboard["panels"]) >= 8 and exprs
    used = {m for e in exprs for m in re.findall(r"\blivermore_[a-z_]+", e)}
    series = {name + s for name, kind, _, _ in METRICS for s in SUFFIXES[kind]}
    assert used and used <= series, used - series
    exported_names = {name for name, _ in exported([reading()])}
    assert used <= exported_names
    documented = (ROOT / "docs" / "metrics.md").read_text()
    for name in used:
        base = next(n for n, kind, _, _ in METRICS if name in (n + s for s in SUFFIXES[kind]))
        assert f"`{base}`" in documented
    # every documented metric is on the dashboard
    assert {n for n, _, _, _ in METRICS} <= {next(n for n, k, _, _ in METRICS if u in (n + s for s in SUFFIXES[k]))
                                             for u in used}
