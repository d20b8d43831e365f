"""Prometheus `/metrics` of the worker, on 127.0.0.1 (docs/metrics.md lists every name).

Nothing is counted here: at scrape time the collector reads the same counters the stats snapshot
is made from (streaming.worker.measure), so the hot path keeps its plain int increments and the
two outlets agree. Served from the worker's event loop (aiohttp), so a scrape never reads a
counter while another thread changes it. Imported only when LIVERMORE_METRICS_PORT is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from streaming.errors import UsageError
from streaming.worker.measure import ExchangeMeasure, Reading

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

# (name as exported, type, labels, help): docs/metrics.md says the same (a test compares them)
METRICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("livermore_frames_received_total", "counter", ("exchange",), "WebSocket frames received"),
    ("livermore_closes_published_total", "counter", ("exchange", "timeframe"), "close events published"),
    ("livermore_close_lag_seconds", "histogram", ("exchange", "timeframe"),
     "bar end (open + timeframe) to its close event's publication, on the exchange's clock"),
    ("livermore_streams", "gauge", ("exchange",), "(symbol, timeframe) streams served"),
    ("livermore_stale_streams", "gauge", ("exchange",), "live streams with no frame past their threshold now"),
    ("livermore_stream_stale_events_total", "counter", ("exchange",), "times a live stream went stale"),
    ("livermore_stream_resubscribes_total", "counter", ("exchange",), "resubscriptions of stale streams"),
    ("livermore_reconnects_total", "counter", ("exchange",), "WebSocket reconnects"),
    ("livermore_rest_requests_total", "counter", ("exchange", "endpoint"), "REST requests sent"),
    ("livermore_rest_rate_limited_total", "counter", ("exchange", "endpoint"), "REST answers 429 (or 418)"),
    ("livermore_redis_script_seconds", "summary", ("exchange",),
     "time of the close script calls (one per batch of closes), as the worker waited for them"),
    ("livermore_malformed_frames_total", "counter", ("exchange", "kind"), "frames that could not be parsed"),
    ("livermore_skipped_frames_total", "counter", ("exchange", "kind"),
     "parsed frames or closes skipped (unknown symbol, out of bounds, refused by the pipeline)"),
    ("livermore_corrections_total", "counter", ("exchange",), "closed bars corrected after their close event"),
)
_HELP = {name: text for name, _, _, text in METRICS}


def _family_name(name: str) -> str:
    return name.removesuffix("_total")  # prometheus_client adds it back to counters


def families(readings: Sequence[Reading]) -> list[Metric]:
    """Every metric of METRICS out of the readings (one per exchange)."""
    def counter(name: str, labels: Sequence[str]) -> CounterMetricFamily:
        return CounterMetricFamily(_family_name(name), _HELP[name], labels=list(labels))

    def gauge(name: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, _HELP[name], labels=["exchange"])

    frames = counter("livermore_frames_received_total", ["exchange"])
    closes = counter("livermore_closes_published_total", ["exchange", "timeframe"])
    lag = HistogramMetricFamily("livermore_close_lag_seconds", _HELP["livermore_close_lag_seconds"],
                                labels=["exchange", "timeframe"])
    streams, stale = gauge("livermore_streams"), gauge("livermore_stale_streams")
    stale_events = counter("livermore_stream_stale_events_total", ["exchange"])
    resubscribes = counter("livermore_stream_resubscribes_total", ["exchange"])
    reconnects = counter("livermore_reconnects_total", ["exchange"])
    requests = counter("livermore_rest_requests_total", ["exchange", "endpoint"])
    limited = counter("livermore_rest_rate_limited_total", ["exchange", "endpoint"])
    script = SummaryMetricFamily("livermore_redis_script_seconds", _HELP["livermore_redis_script_seconds"],
                                 labels=["exchange"])
    malformed = counter("livermore_malformed_frames_total", ["exchange", "kind"])
    skipped = counter("livermore_skipped_frames_total", ["exchange", "kind"])
    corrections = counter("livermore_corrections_total", ["exchange"])
    for r in readings:
        ex = r.exchange
        frames.add_metric([ex], r.total("frames"))
        for tf, n in sorted(r.closes.closes.items()):
            closes.add_metric([ex, tf], n)
        for tf, hist in sorted(r.closes.lags.items()):
            buckets = [(floatToGoString(bound / 1000), n) for bound, n in hist.cumulative()]
            lag.add_metric([ex, tf], buckets, hist.sum_ms / 1000)
        streams.add_metric([ex], r.streams)
        stale.add_metric([ex], len(r.stale))
        stale_events.add_metric([ex], r.total("streams_stale"))
        resubscribes.add_metric([ex], r.total("streams_resubscribes"))
        reconnects.add_metric([ex], r.total("reconnects"))
        for endpoint, n in r.by("rest_requests").items():
            requests.add_metric([ex, endpoint], n)
        for endpoint, n in r.by("rest_429").items():
            limited.add_metric([ex, endpoint], n)
        script.add_metric([ex], r.closes.script_calls, r.closes.script_seconds)
        for kind, n in r.by("malformed").items():
            malformed.add_metric([ex, kind], n)
        for kind, n in r.by("skipped").items():
            skipped.add_metric([ex, kind], n)
        corrections.add_metric([ex], r.total("corrections"))
    return [frames, closes, lag, streams, stale, stale_events, resubscribes, reconnects, requests, limited, script,
            malformed, skipped, corrections]


class LivermoreCollector(Collector):
    """Every exchange the worker has streamed since it started (counters do not vanish with a stop)."""

    def __init__(self, measures: Mapping[str, ExchangeMeasure]) -> None:
        self.measures = measures

    def collect(self) -> Iterator[Metric]:
        yield from families([m.read() for _, m in sorted(self.measures.items())])


class MetricsServer:
    def __init__(self, port: int, measures: Mapping[str, ExchangeMeasure]) -> None:
        self.port = port
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(LivermoreCollector(measures))
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> MetricsServer:
        """Serve http://127.0.0.1:port/metrics; UsageError when the port is taken."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, HOST, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise UsageError(f"LIVERMORE_METRICS_PORT={self.port}: cannot serve /metrics on {HOST}:{self.port} "
                             f"({exc.strerror or exc}); pick a free port, or 0 for no /metrics") from None
        self._runner = runner
        log.info("Prometheus metrics on http://%s:%d/metrics", HOST, self.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
