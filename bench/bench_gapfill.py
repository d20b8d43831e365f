"""Gap fills off the hot path, measured: a real `livermore worker` process against the local
simulator, where hundreds of streams need a REST gap fill behind a slow REST while the other
symbols on the same connection keep closing live. Closes are counted at a Redis subscriber.

    .venv/bin/python bench/bench_gapfill.py [--quick] [--fill-symbols N] [--live-symbols N]
                                            [--rest-latency S] [--worker-src DIR]

The simulated clock runs 60x and starts shortly before midnight UTC, when every timeframe (5m,
15m, 1h, 4h, 1d) closes at once. Just before midnight the simulator is told to withhold the next
closing frame of every stream of the fill symbols (fault `lose_closes`), so each of their 5
streams finds one bar missing at midnight and fills it over REST, every answer 0.5 s late (fault
`slow_rest`). The live symbols share the WebSocket connection and keep closing. The lag of a
close is its event's arrival at the subscriber minus the bar's end (the simulated end mapped to
CLOCK_MONOTONIC); the baseline is the same symbols' lag before the fault, in the same run
(docs/benchmarks.md says what each row means; bench/fill_lags.py computes them). --quick is a
smoke run (100 streams to fill, under a minute); its figures are not the table's. Only 127.0.0.1
is used; Redis and the database are private to the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.close_watch import CloseWatch
from bench.fill_lags import STEP_MS, Clock, Close, Fill, Window, by_bar_end, closes, fill, repeated_events, window
from bench.processes import LIVERMORE, PYTHON, Platform, Worker
from bench.report import Row, render, wrap
from bench.subscriber import Subscriber
from streaming.clock import ENV as SIM_CLOCK_ENV
from streaming.clock import encode_sim_clock

CLOSE_PATTERN = "channel:exchange:2:candle:close:*"
MIDNIGHT_MS = 1_786_320_000_000  # 2026-08-10T00:00:00Z: a bar of every timeframe ends here
CONCURRENCY = 8  # the worker's default gapfill_concurrency (GapFills)


@dataclass(frozen=True)
class Config:
    fill_symbols: int = 100     # x 5 timeframes = 500 streams to fill
    live_symbols: int = 50      # x 5 = 250 streams that keep closing, on the same connection
    rest_latency: float = 0.5   # seconds before every REST answer
    speed: float = 60.0         # simulated seconds per real second: a 5m bar every 5 s
    update_interval: float = 0.2  # real seconds between the simulator's ticks (a close waits for one)
    lead_s: float = 70.0        # real seconds from the simulator's start to midnight: 22:50, so the
                                # baseline has the 23:00 burst (5m, 15m and 1h close at once)
    fault_lead_ms: int = 90_000  # simulated ms before midnight when the closes are withheld
    timeout_s: float = 240.0    # for the whole fill


QUICK = Config(fill_symbols=20, live_symbols=10, lead_s=20.0, timeout_s=60.0)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Measured:
    baseline: Window
    during: Window
    fill: Fill
    fill_seconds: float          # midnight (the bars' end) -> the last filled bar's close event
    repeated: int                # over the whole run
    rest_requests: int           # the simulator's count, the whole run
    withheld: int                # closes the simulator never sent
    notes: list[str] = field(default_factory=list)


def table(cfg: Config, m: Measured) -> list[Row]:
    streams = cfg.fill_symbols * len(STEP_MS)
    floor = streams * cfg.rest_latency / CONCURRENCY
    b, d, f = m.baseline, m.during, m.fill
    lost = b.lost + d.lost
    base = "no fill running"
    pct = Window.pct
    return [
        Row("bar end->event p50, filling", pct(d.lags_ms, 50), "ms", pct(b.lags_ms, 50), base),
        Row("bar end->event p99, filling", pct(d.lags_ms, 99), "ms", pct(b.lags_ms, 99), base),
        Row("bar end->event max, filling", pct(d.lags_ms, 100), "ms", pct(b.lags_ms, 100), base, "< 1000 ms",
            f"live closes: {len(d.lags_ms)} of {cfg.live_symbols} live symbols x 5 timeframes ended during the "
            f"fill, {len(b.lags_ms)} before it (the baseline)" + (f"; {lost} never arrived" if lost else
                                                                   ", none lost") +
            f". bar end->event: the close event at the subscriber - the bar's end; the simulator sends a "
            f"close on its next tick, up to {cfg.update_interval:g} s after the end"),
        Row("bar end->frame p50, filling", pct(d.delivery_ms, 50), "ms", pct(b.delivery_ms, 50), base),
        Row("bar end->frame max, filling", pct(d.delivery_ms, 100), "ms", pct(b.delivery_ms, 100), base, "",
            "bar end->frame: the closing frame's arrival at a plain WebSocket client on the live symbols' "
            "streams (a connection of its own): what the simulator's delivery alone costs. Each connection "
            "ticks on its own schedule, so it tells the simulator's share only roughly"),
        Row(f"fill of {streams} streams", m.fill_seconds, "s", floor, "REST floor", "",
            f"fill: the bars' end (midnight) -> the last filled bar's close event. REST floor: {streams} "
            f"requests x {cfg.rest_latency:g} s / {CONCURRENCY} at once"),
        Row("filled bars, 1 event each", float(f.once), "", float(f.streams), "withheld", "all",
            f"filled bars: {f.once} of {f.streams} got exactly one close event ({f.missing} none, {f.repeated} "
            f"more than one; {f.from_rest} events say source=rest); the simulator withheld {m.withheld} closes "
            f"and answered {m.rest_requests} REST requests; {m.repeated} repeated close events in the whole run"),
    ]


class Simulator:
    """`livermore exchange-sim` in a process of its own (so the bench never slows its ticks), with
    only synthetic symbols; faults and counters through its control endpoint."""

    def __init__(self, platform: Platform, cfg: Config, symbols: int, start_ms: int) -> None:
        empty = platform.root / "no-recordings"
        empty.mkdir(exist_ok=True)
        self.urls_file = platform.root / "sim-urls.json"
        cli = [str(LIVERMORE)] if LIVERMORE.exists() else [PYTHON, "-c", "from streaming.cli import main; main()"]
        self.args = [*cli, "exchange-sim", "--symbols", str(symbols), "--seed", "1", "--speed", f"{cfg.speed:g}",
                     "--update-interval", f"{cfg.update_interval:g}", "--start", str(start_ms),
                     "--recordings", str(empty), "--urls-file", str(self.urls_file)]
        self.env = platform.env()
        self.log_path = platform.root / "sim.log"
        self.speed = cfg.speed
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws_url = self.rest_url = self.clock_setting = ""

    def __enter__(self) -> Simulator:
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                urls = json.loads(self.urls_file.read_text())
                break
            except (FileNotFoundError, json.JSONDecodeError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the simulator did not start: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)
        self.ws_url, self.rest_url = urls["binance"]["ws_url"], urls["binance"]["rest_url"]
        c = urls["clock"]
        self.clock_setting = encode_sim_clock(c["start_ms"], c["real_start_ms"], c["speed"])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _call(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.rest_url + path, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def inject(self, kind: str, **params: object) -> None:
        self._call("/_sim/fault", {"kind": kind, **params})

    def stats(self) -> dict[str, int]:
        return self._call("/_sim/info")["stats"]["binance"]  # type: ignore[index]

    def symbols(self) -> list[str]:
        return self._call("/_sim/info")["symbols"]["binance"]  # type: ignore[index]

    def clock(self) -> Clock:
        """The simulated clock against CLOCK_MONOTONIC: the quickest of 5 readings, taken mid-request."""
        best: tuple[int, int, int] | None = None
        for _ in range(5):
            before = time.monotonic_ns()
            now_ms = int(self._call("/_sim/info")["now_ms"])  # type: ignore[call-overload]
            after = time.monotonic_ns()
            if best is None or after - before < best[0]:
                best = (after - before, now_ms, (before + after) // 2)
        assert best is not None
        return Clock(best[1], best[2], self.speed)

    def alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the simulator exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")


class SimWorker(Worker):
    """`python -m streaming --autostart binance --no-warmup --symbols binance=...` on the simulator's clock."""

    def __init__(self, platform: Platform, sim: Simulator, symbols: list[str], src: Path | None = None) -> None:
        super().__init__(platform, 0, sim.ws_url, sim.rest_url, src)
        self.args += ["--autostart", "binance", "--no-warmup", "--symbols", "binance=" + ",".join(symbols)]
        self.env[SIM_CLOCK_ENV] = sim.clock_setting


def sleep_until(clock: Clock, sim_ms: int, *alive: Callable[[], None]) -> None:
    while (left := (clock.mono(sim_ms) - time.monotonic_ns()) / 1e9) > 0:
        for check in alive:
            check()
        time.sleep(min(left, 0.5))


def streams_of(symbols: Iterable[str]) -> list[str]:
    return [f"{s.lower()}@kline_{tf}" for s in symbols for tf in STEP_MS]


def measure(cfg: Config, platform: Platform, worker_src: Path | None = None) -> Measured:
    n = cfg.fill_symbols + cfg.live_symbols
    start_ms = MIDNIGHT_MS - int(cfg.lead_s * cfg.speed * 1000)
    with Simulator(platform, cfg, n, start_ms) as sim:
        clock = sim.clock()
        names = sim.symbols()
        # the live symbols spread evenly over the worker's streams (name order, as the connection and
        # the simulator's ticks carry them), so their frames are not all first or last in a tick
        order = sorted(names, key=str.lower)
        every = len(order) / cfg.live_symbols if cfg.live_symbols else 0
        picked = {int(i * every) for i in range(cfg.live_symbols)}
        live = [s for i, s in enumerate(order) if i in picked]
        to_fill = [s for i, s in enumerate(order) if i not in picked]
        sim.inject("slow_rest", seconds=cfg.rest_latency)
        cs: list[Close] = []
        with Subscriber(platform.redis_url, CLOSE_PATTERN) as sub, CloseWatch(sim.ws_url, streams_of(live)) as watch, \
                SimWorker(platform, sim, names, worker_src) as worker:
            log(f"worker: {n} symbols x 5 timeframes on the simulator, REST answers {cfg.rest_latency:g} s late")
            deadline = time.monotonic() + 90
            while True:  # live: every symbol closed a 5m bar through the worker
                worker.alive()
                sim.alive()
                cs += closes(sub.take())
                seen = {c.symbol for c in cs if c.timeframe == "5m"}
                if len(seen) == n:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {len(seen)} of {n} symbols closed a 5m bar within 90 s")
                time.sleep(0.5)
            live_from = clock.sim(time.monotonic_ns())
            fault_ms = MIDNIGHT_MS - cfg.fault_lead_ms
            if live_from >= fault_ms:
                raise RuntimeError("the worker went live too late for a baseline: raise lead_s")
            log(f"live {(MIDNIGHT_MS - live_from) / cfg.speed / 1000:.1f} s before midnight; baseline until the fault")
            sleep_until(clock, fault_ms, worker.alive, sim.alive)
            sim.inject("lose_closes", symbols=to_fill)
            log(f"closes withheld: the next close of every stream of {len(to_fill)} symbols")
            deadline = time.monotonic() + cfg.timeout_s
            while True:
                worker.alive()
                cs += closes(sub.take())
                f = fill(cs, to_fill, MIDNIGHT_MS)
                if f.once + f.repeated == f.streams or time.monotonic() > deadline:
                    break
                time.sleep(0.25)
            time.sleep(2.0)  # strays: a repeated event, the last live closes of the window
            cs += closes(sub.take())
            frames = watch.take()
            stats = sim.stats()
            worker.alive()
    f = fill(cs, to_fill, MIDNIGHT_MS)
    done_ns = f.done_ns if f.done_ns is not None else time.monotonic_ns()
    m = Measured(baseline=window(cs, clock, frames, live, live_from, fault_ms),
                 during=window(cs, clock, frames, live, MIDNIGHT_MS - 1, clock.sim(done_ns)),
                 fill=f, fill_seconds=(done_ns - clock.mono(MIDNIGHT_MS)) / 1e9, repeated=repeated_events(cs),
                 rest_requests=stats["rest_requests"], withheld=stats["closes_withheld"])
    for end, count, worst, frame in by_bar_end(cs, clock, frames, live, MIDNIGHT_MS - 1, clock.sim(done_ns)):
        log(f"  bars ending {(end - MIDNIGHT_MS) / 60_000:+5.0f} min from midnight: {count:3d} live closes, "
            f"bar end->event max {worst:4.0f} ms, bar end->frame max {frame:4.0f} ms")
    if f.done_ns is None or f.missing:
        m.notes.append(f"the fill did not finish within {cfg.timeout_s:g} s: {f.missing} filled bars had no event")
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 streams to fill (< 1 minute)")
    ap.add_argument("--fill-symbols", type=int, metavar="N", help="symbols whose 5 streams need a fill (100)")
    ap.add_argument("--live-symbols", type=int, metavar="N", help="symbols that keep closing live (50)")
    ap.add_argument("--rest-latency", type=float, metavar="S", help="seconds before every REST answer (0.5)")
    ap.add_argument("--worker-src", type=Path, metavar="DIR", help="run the worker from this source tree "
                    "(a folder holding streaming/, e.g. an older commit's `git archive`), to compare")
    args = ap.parse_args()
    cfg = QUICK if args.quick else Config()
    for name in ("fill_symbols", "live_symbols", "rest_latency"):
        if getattr(args, name) is not None:
            cfg = replace(cfg, **{name: getattr(args, name)})
    if (cfg.fill_symbols + cfg.live_symbols) * len(STEP_MS) > 1024:
        ap.error("at most 1024 streams: the bench keeps them on one connection")
    load_start, started = os.getloadavg()[0], time.monotonic()
    with tempfile.TemporaryDirectory(prefix="livermore-bench-") as d, Platform(Path(d)) as platform:
        m = measure(cfg, platform, args.worker_src)
    title = (f"livermore gap fills{' (--quick: smoke figures)' if args.quick else ''}: "
             f"{cfg.fill_symbols * 5} streams filled behind a {cfg.rest_latency:g} s REST, "
             f"{cfg.live_symbols * 5} live{f'; worker from {args.worker_src}' if args.worker_src else ''}; "
             f"{os.cpu_count()} cores, load {load_start:.1f} -> "
             f"{os.getloadavg()[0]:.1f}, {time.monotonic() - started:.0f} s")
    sys.stderr.flush()
    print("\n" + render(table(cfg, m), title))
    for note in m.notes:
        print("\n".join(wrap(note)))


if __name__ == "__main__":
    main()
