"""Black-box benchmark of the streaming worker: a real `livermore worker` process against a local
Binance-protocol load server, close events counted at a Redis subscriber; every figure printed
as a ratio to a baseline measured in the same run (docs/benchmarks.md says what each row means).

    .venv/bin/python bench/bench_blackbox.py [--quick] [--server-procs N] [--no-peers]

--quick is a smoke run (smaller stream counts, one round each, under a minute); its figures
are not the table's. Only 127.0.0.1 is used; Redis and the database are private to the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import frames as fr
from bench import peers
from bench import scenarios as sc
from bench.ceiling import split
from bench.loadserver import LoadServer
from bench.processes import LIVERMORE, PYTHON, CpuMeter, Platform, ScriptMeter, Worker, bare_python_rss_kb, wall_ms
from bench.report import Row, render, wrap
from bench.subscriber import Subscriber

CLOSE_PATTERN = "channel:exchange:2:candle:close:*"
PEER_PATTERN = "__keyspace@0__:candles*-BINANCE-*"  # cryptofeed's keys only, not the worker's candles:2:...


@dataclass(frozen=True)
class Config:
    rate_symbols: int = 500              # x 5 timeframes = 2,500 streams
    per_close: int = 150
    flood_rounds: int = 150              # 375,000 frames, one close per stream
    repeats: int = 3                     # rounds of every measurement; the table shows medians
    storm_repeats: int = 7               # storms are short and swing most with load: more rounds
    searches: int = 3
    search_steps: int = 5
    step_seconds: float = 4.0
    storm_symbols: tuple[int, int] = (400, 1500)  # 2,000 and 7,500 streams
    warm_rounds: int = 40                # closed bars per stream before measuring (MACD-V seeded)
    peer_warm_rounds: int = 2            # cryptofeed keeps no state: two bars warm its connections
    cli_repeats: int = 5
    memory_streams: int = 2000
    catch_up_bars: int = 40              # closed bars sent at once to every stream of the larger storm


QUICK = Config(rate_symbols=100, repeats=1, storm_repeats=1, searches=1, search_steps=2, step_seconds=1.5,
               storm_symbols=(50, 150), warm_rounds=3, peer_warm_rounds=1, cli_repeats=2, memory_streams=300,
               catch_up_bars=5)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def startup(platform: Platform, cfg: Config) -> dict[str, float]:
    help_cmd = [str(LIVERMORE), "--help"] if LIVERMORE.exists() else [
        PYTHON, "-c", "from streaming.cli import main; main(['--help'])"]
    out = {"help_ms": wall_ms(help_cmd, cfg.cli_repeats), "pass_ms": wall_ms([PYTHON, "-c", "pass"], cfg.cli_repeats),
           "bare_kb": bare_python_rss_kb()}
    with Worker(platform) as idle:
        idle.wait_heartbeat()
        out["idle_kb"] = idle.settled_rss_kb()
    log(f"  livermore --help {out['help_ms']:.0f} ms, python -c pass {out['pass_ms']:.0f} ms; idle worker RSS "
        f"{out['idle_kb'] / 1024:.1f} MB, bare python {out['bare_kb'] / 1024:.1f} MB")
    return out


def ceilings(server: LoadServer, cfg: Config) -> tuple[list[float], list[float]]:
    groups = split(fr.streams_of(cfg.rate_symbols))
    one = sc.ceiling(server, groups, 1, cfg.repeats, cfg.flood_rounds, cfg.warm_rounds)
    log(f"  1 plain client: {', '.join(f'{r:,.0f}' for r in one)} frames/s")
    two = sc.ceiling(server, groups, 2, cfg.repeats, cfg.flood_rounds, cfg.warm_rounds)
    log(f"  2 plain clients together: {', '.join(f'{r:,.0f}' for r in two)} frames/s")
    return one, two


def rates(server: LoadServer, platform: Platform, cfg: Config) -> tuple[list[sc.Flood], list[float]]:
    streams = cfg.rate_symbols * 5
    with Subscriber(platform.redis_url, CLOSE_PATTERN) as sub, \
            Worker(platform, cfg.rate_symbols, server.ws_url, server.rest_url) as worker:
        server.wait_streams(streams, alive=worker.alive)
        sc.warm(server, sub, cfg.warm_rounds)
        floods, g = [], 0
        for _ in range(cfg.repeats):
            floods.append(sc.flood(server, sub, g, cfg.flood_rounds, cfg.warm_rounds))
            g += cfg.flood_rounds
            log(f"  worker fed as fast as it reads: {floods[-1].rate:,.0f} frames/s, p99 lag "
                f"{floods[-1].p99_ms:.0f} ms, lost {floods[-1].lost}")
        start = 0.6 * sc.median([f.rate for f in floods])
        best = []
        for i in range(cfg.searches):
            log(f"  sustained search {i + 1}/{cfg.searches} ({streams:,} streams, 1 close per {cfg.per_close} frames)")
            rate, _steps, g = sc.search(server, sub, start, cfg.search_steps, cfg.step_seconds, g,
                                        cfg.warm_rounds, log)
            best.append(rate)
        worker.alive()
    platform.flush()
    return floods, best


class PeerCryptofeed:
    """cryptofeed's CandlesRedis on n symbols x 5 timeframes, on a load server of its own, so its
    storms can alternate with the worker's: both stay connected, and each storm goes to one."""

    def __init__(self, platform: Platform, cfg: Config, exe: Path, n_symbols: int, server_procs: int) -> None:
        self.platform, self.cfg, self.exe, self.n, self.procs = platform, cfg, exe, n_symbols, server_procs
        self.log_path = platform.root / f"cryptofeed-{n_symbols}.log"
        self.stack = contextlib.ExitStack()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PeerCryptofeed:
        try:
            self.server = self.stack.enter_context(LoadServer(self.n, procs=self.procs))  # as the worker's
            self.sub = self.stack.enter_context(Subscriber(self.platform.redis_url, PEER_PATTERN))
            self.proc = peers.cryptofeed(self.exe, self.server.ws_url, self.server.rest_url, self.platform.redis_url,
                                         self.n, self.log_path)
            self.server.wait_streams(self.n * 5, alive=self.alive)
            with self._notifications():
                sc.warm(self.server, self.sub, self.cfg.peer_warm_rounds)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stack.close()

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace").strip()
            raise RuntimeError(f"cryptofeed exited with {self.proc.returncode}: {tail.splitlines()[-1:] or ''}")

    @contextlib.contextmanager
    def _notifications(self) -> Iterator[None]:
        # a notification per ZADD is the peer's "close event"; off otherwise, so the worker's own
        # ZADDs never pay for notifications nobody is measuring
        with self.platform.client() as r:
            r.config_set("notify-keyspace-events", "Kz")
        try:
            yield
        finally:
            with self.platform.client() as r:
                r.config_set("notify-keyspace-events", "")

    def storm(self, i: int) -> sc.Storm:
        assert self.proc is not None, "cryptofeed runs"
        cpu = CpuMeter({"cryptofeed": [self.proc.pid], "Redis": [self.platform.redis_pid], "subscriber": [self.sub.pid],
                        "load server": self.server.pids})
        with self._notifications():
            out = sc.storms(self.server, self.sub, self.cfg.peer_warm_rounds + i, 1, sc.peer_key, cpu=cpu)[0]
        self.alive()
        return out


def storms(server: LoadServer, platform: Platform, cfg: Config, n_symbols: int, peer_exe: Path | None,
           notes: list[str]) -> tuple[list[sc.Storm], list[sc.Storm], int, sc.CatchUp | None]:
    """The worker's storms and, alternating with them, cryptofeed's (a drifting machine load then
    moves both alike); the worker's RSS; the catch-up for the larger storm."""
    catch_up = None
    ours: list[sc.Storm] = []
    theirs: list[sc.Storm] = []
    with Subscriber(platform.redis_url, CLOSE_PATTERN) as sub, \
            Worker(platform, n_symbols, server.ws_url, server.rest_url) as worker:
        server.wait_streams(n_symbols * 5, alive=worker.alive)
        sc.warm(server, sub, cfg.warm_rounds)
        with contextlib.ExitStack() as stack:
            peer = None
            if peer_exe is not None:
                try:
                    peer = stack.enter_context(PeerCryptofeed(platform, cfg, peer_exe, n_symbols, server.procs))
                except RuntimeError as exc:
                    notes.append(f"cryptofeed storm of {n_symbols * 5:,} skipped: {str(exc).splitlines()[0][:200]}")
            cpu = CpuMeter({"worker": [worker.pid], "Redis": [platform.redis_pid], "subscriber": [sub.pid],
                            "load server": server.pids})
            script = ScriptMeter(stack.enter_context(contextlib.closing(platform.client())))
            for i in range(cfg.storm_repeats):
                ours += sc.storms(server, sub, cfg.warm_rounds + i, 1, sc.worker_key, cpu=cpu, script=script)
                log(f"  worker, {n_symbols * 5:,} closes at once: last event {ours[-1].last_ms:.0f} ms, "
                    f"p50 {ours[-1].p50_ms:.0f} ms, lost {ours[-1].lost}")
                if peer is not None:
                    try:
                        theirs.append(peer.storm(i))
                    except RuntimeError as exc:
                        notes.append(f"cryptofeed storms of {n_symbols * 5:,} stopped after {len(theirs)}: "
                                     f"{str(exc).splitlines()[0][:200]}")
                        peer = None
                        continue
                    log(f"  cryptofeed, {n_symbols * 5:,} closes at once: last write {theirs[-1].last_ms:.0f} ms, "
                        f"p50 {theirs[-1].p50_ms:.0f} ms, lost {theirs[-1].lost}")
        rss = worker.settled_rss_kb()
        if n_symbols == cfg.storm_symbols[1]:
            catch_up = sc.catch_up(server, sub, cfg.warm_rounds + cfg.storm_repeats, cfg.catch_up_bars)
            log(f"  catch-up, {cfg.catch_up_bars} bars x {n_symbols * 5:,} streams at once: {catch_up.closes:,} "
                f"closes in {catch_up.seconds:.1f} s, lost {catch_up.lost}, reconnects {catch_up.reconnects}")
        worker.alive()
    platform.flush()
    log(f"  worker RSS with {n_symbols * 5:,} live streams: {rss / 1024:.1f} MB")
    return ours, theirs, rss, catch_up


@dataclass
class Measured:
    startup: dict[str, float] = field(default_factory=dict)
    ceiling1: list[float] = field(default_factory=list)   # frames/s of one plain client, per round
    ceiling2: list[float] = field(default_factory=list)   # two plain clients together
    floods: list[sc.Flood] = field(default_factory=list)
    sustained: list[float] = field(default_factory=list)  # best rate of each search
    storms: dict[int, list[sc.Storm]] = field(default_factory=dict)       # by symbols
    peer_storms: dict[int, list[sc.Storm]] = field(default_factory=dict)  # cryptofeed, by symbols
    rss_kb: dict[int, int] = field(default_factory=dict)                  # worker RSS, by symbols
    peer_kb: dict[str, float] = field(default_factory=dict)               # talipp / numpy, per stream
    catch_up: sc.CatchUp | None = None


def storm_rows(cfg: Config, m: Measured) -> list[Row]:
    rows = []
    for n in cfg.storm_symbols:
        ours, theirs = m.storms[n], m.peer_storms.get(n, [])
        lost = sum(s.lost for s in ours + theirs)
        peer = "cryptofeed" if theirs else ""
        rows.append(Row(f"{n * 5:,}-close storm, last", sc.median([s.last_ms for s in ours]), "ms",
                        sc.median([s.last_ms for s in theirs]) if theirs else None, peer,
                        "<1, <=200ms" if n == cfg.storm_symbols[1] else "< 1",
                        f"{lost} closes lost in the {n * 5:,}-close storms" if lost else ""))
        rows.append(Row(f"{n * 5:,}-close storm, p50", sc.median([s.p50_ms for s in ours]), "ms",
                        sc.median([s.p50_ms for s in theirs]) if theirs else None, peer))
        if ours and all(s.cpu_total_ms > 0 for s in ours):
            rows.append(cpu_row(n * 5, ours, theirs if theirs and all(s.cpu_total_ms > 0 for s in theirs) else []))
    return rows


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_row(closes: int, ours: list[sc.Storm], theirs: list[sc.Storm], cores: int | None = None) -> Row:
    """The storm's CPU time, every process's (worker or cryptofeed, Redis, subscriber, load server),
    over the cores: the storm cannot take much less wall time than that, whatever runs when."""
    cores = cores or usable_cores()

    def spent(storms: list[sc.Storm]) -> str:
        names = list(storms[0].cpu_ms)
        each = ", ".join(f"{name} {sc.median([s.cpu_ms[name] for s in storms]):.0f}" for name in names)
        scripts = [s.script_ms for s in storms if s.script_ms is not None]
        inside = f" (Redis in the close script {sc.median(scripts):.0f})" if len(scripts) == len(storms) else ""
        return f"medians {each}{inside}; median total {sc.median([s.cpu_total_ms for s in storms]):.0f} ms"

    note = (f"CPU/cores: the CPU time all processes took in a {closes:,}-close storm (first frame sent to last "
            f"event counted), over the {cores} cores: the storm cannot take much less. Livermore's: {spent(ours)}"
            + (f". cryptofeed's: {spent(theirs)}" if theirs else ""))
    return Row(f"{closes:,} storm, CPU/cores", sc.median([s.cpu_total_ms for s in ours]) / cores, "ms",
               sc.median([s.cpu_total_ms for s in theirs]) / cores if theirs else None,
               "cryptofeed" if theirs else "", note=note)


def table(cfg: Config, m: Measured, notes: list[str]) -> list[Row]:
    ceiling, pair = sc.median(m.ceiling1), sc.median(m.ceiling2)
    lost = sum(f.lost for f in m.floods)
    rows = [
        Row(f"sustained, {cfg.rate_symbols * 5:,} streams", sc.median(m.sustained), "/s", ceiling, "ceiling",
            ">= 0.5", f"sustained: highest paced rate sent with 0 lost and p99 lag <= {sc.MAX_LAG_MS:.0f} ms, 1 close "
            f"per {cfg.per_close} frames; median of {cfg.searches} searches of {cfg.search_steps} steps"),
        Row("fed as fast as it reads", sc.median([f.rate for f in m.floods]), "/s", ceiling, "ceiling", ">= 0.6",
            f"{lost} closes lost while fed as fast as it reads" if lost else ""),
        *storm_rows(cfg, m),
    ]
    if m.catch_up is not None:
        c = m.catch_up
        rows.append(Row(f"{cfg.catch_up_bars}-bar catch-up, closes/s", c.closes / c.seconds, "/s", goal="0 lost/recon",
                        note=f"catch-up: {cfg.catch_up_bars} closed bars of each of {c.closes // cfg.catch_up_bars:,} "
                             f"streams written at once ({c.closes:,} closes, {c.seconds:.1f} s): {c.lost} lost, "
                             f"{c.reconnects} reconnects"))
    (small, big), st = cfg.storm_symbols, m.startup
    slope = (m.rss_kb[big] - m.rss_kb[small]) * 1024 / ((big - small) * 5) / 1000
    talipp, numpy = m.peer_kb.get("talipp"), m.peer_kb.get("numpy")
    rows.append(Row("RSS per live stream", slope, "KB", talipp, "talipp" if talipp else "", "< 2 KB",
                    f"RSS per live stream: (RSS at {big * 5:,} streams - RSS at {small * 5:,}) / "
                    f"{(big - small) * 5:,}, both warmed the same way; the row after is (RSS at N - idle RSS) / N"))
    if numpy:
        rows.append(Row("RSS per live stream", slope, "KB", numpy, "numpy window"))
    rows.append(Row(f"RSS/stream, {big * 5:,} - idle", (m.rss_kb[big] - st["idle_kb"]) * 1024 / (big * 5) / 1000,
                    "KB"))
    rows.append(Row("idle worker RSS", st["idle_kb"] / 1024, "MB", st["bare_kb"] / 1024, "bare python", "< 35 MB"))
    rows.append(Row("livermore --help", st["help_ms"], "ms", st["pass_ms"], "python -c pass", "< 250 ms"))
    verdict = "the server is not the limit" if pair > 1.05 * ceiling else \
        "WARNING: two clients got no more than one: the server may be the limit, or other work holds the cores"
    notes.insert(0, f"ceiling: 1 plain websockets client {ceiling:,.0f} frames/s; 2 clients together "
                    f"{pair:,.0f} (x{pair / ceiling:.2f}): {verdict}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small, one round each (< 1 minute)")
    ap.add_argument("--server-procs", type=int, default=1, metavar="N", help="load server processes (default 1)")
    ap.add_argument("--no-peers", action="store_true", help="skip cryptofeed/talipp (no peers' virtualenv)")
    args = ap.parse_args()
    cfg = QUICK if args.quick else Config()
    load_start = os.getloadavg()[0]
    notes: list[str] = []
    m = Measured()
    exe = None
    if not args.no_peers:
        if args.quick and not (peers.CACHE / "bin" / "python").exists():
            notes.append("peers skipped: --quick does not install them; run once without --quick")
        else:
            exe, why = peers.python()
            if exe is None:
                notes.append(f"cryptofeed and talipp skipped: {why}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="livermore-bench-") as d, Platform(Path(d)) as platform:
        log("startup: CLI wall time and idle worker RSS")
        m.startup = startup(platform, cfg)
        with LoadServer(max(cfg.storm_symbols[1], cfg.rate_symbols), procs=args.server_procs) as server:
            streams = cfg.rate_symbols * 5
            log(f"receive ceiling ({streams:,} streams, {cfg.flood_rounds * streams:,} frames a round)")
            m.ceiling1, m.ceiling2 = ceilings(server, cfg)
            log("worker frame rates")
            m.floods, m.sustained = rates(server, platform, cfg)
            for n in cfg.storm_symbols:
                log(f"close storm: {n * 5:,} streams" + (", alternating with cryptofeed's" if exe else ""))
                m.storms[n], theirs, m.rss_kb[n], catch_up = storms(server, platform, cfg, n, exe, notes)
                m.catch_up = catch_up or m.catch_up
                if theirs:
                    m.peer_storms[n] = theirs
    if exe is not None:
        for kind in ("talipp", "numpy"):
            value, why = peers.memory_per_stream(exe, kind, cfg.memory_streams)
            if value is not None:
                m.peer_kb[kind] = value / 1000
            if why:
                notes.append(why)
    rows = table(cfg, m, notes)
    title = (f"livermore black box{' (--quick: smoke figures)' if args.quick else ''}: medians of {cfg.repeats} "
             f"(storms {cfg.storm_repeats}), "
             f"{os.cpu_count()} cores, load {load_start:.1f} -> {os.getloadavg()[0]:.1f}, "
             f"{time.monotonic() - started:.0f} s")
    sys.stderr.flush()
    print("\n" + render(rows, title))
    for note in notes:
        print("\n".join(wrap(note)))


if __name__ == "__main__":
    main()
