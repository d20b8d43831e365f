"""Black-box benchmark of the streaming worker: a real `livermore worker` process against a local
Binance-protocol load server, close events counted at a Redis subscriber; every figure printed
as a ratio to a baseline measured in the same run (docs/benchmarks.md says what each row means).

    .venv/bin/python bench/bench_blackbox.py [--quick] [--server-procs N] [--no-peers]

--quick is a smoke run (smaller stream counts, one round each, under a minute); its figures
are not the table's. Only 127.0.0.1 is used; Redis and the database are private to the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import frames as fr
from bench import peers
from bench import scenarios as sc
from bench.ceiling import split
from bench.loadserver import LoadServer
from bench.processes import LIVERMORE, PYTHON, Platform, Worker, bare_python_rss_kb, wall_ms
from bench.report import Row, render, wrap
from bench.subscriber import Subscriber

CLOSE_PATTERN = "channel:exchange:2:candle:close:*"
PEER_PATTERN = "__keyspace@0__:candles*"


@dataclass(frozen=True)
class Config:
    rate_symbols: int = 500              # x 5 timeframes = 2,500 streams
    per_close: int = 150
    flood_rounds: int = 150              # 375,000 frames, one close per stream
    repeats: int = 3                     # rounds of every measurement; the table shows medians
    searches: int = 3
    search_steps: int = 5
    step_seconds: float = 4.0
    storm_symbols: tuple[int, int] = (400, 1500)  # 2,000 and 7,500 streams
    warm_rounds: int = 40                # closed bars per stream before measuring (MACD-V seeded)
    peer_warm_rounds: int = 2            # cryptofeed keeps no state: two bars warm its connections
    cli_repeats: int = 5
    memory_streams: int = 2000


QUICK = Config(rate_symbols=100, repeats=1, searches=1, search_steps=2, step_seconds=1.5,
               storm_symbols=(50, 150), warm_rounds=3, peer_warm_rounds=1, cli_repeats=2, memory_streams=300)


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


def rates(server: LoadServer, platform: Platform, cfg: Config) -> dict[str, object]:
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
    return {"floods": floods, "sustained": best}


def storms(server: LoadServer, platform: Platform, cfg: Config, n_symbols: int) -> tuple[list[sc.Storm], int]:
    with Subscriber(platform.redis_url, CLOSE_PATTERN) as sub, \
            Worker(platform, n_symbols, server.ws_url, server.rest_url) as worker:
        server.wait_streams(n_symbols * 5, alive=worker.alive)
        sc.warm(server, sub, cfg.warm_rounds)
        out = sc.storms(server, sub, cfg.warm_rounds, cfg.repeats, sc.worker_key)
        rss = worker.settled_rss_kb()
        worker.alive()
    platform.flush()
    for s in out:
        log(f"  worker, {n_symbols * 5:,} closes at once: last event {s.last_ms:.0f} ms, p50 {s.p50_ms:.0f} ms, "
            f"lost {s.lost}")
    log(f"  worker RSS with {n_symbols * 5:,} live streams: {rss / 1024:.1f} MB")
    return out, rss


def peer_storms(server: LoadServer, platform: Platform, cfg: Config, exe: Path, n_symbols: int) -> list[sc.Storm]:
    with platform.client() as r:
        r.config_set("notify-keyspace-events", "Kz")  # a notification per ZADD: the peer's "close event"
    proc = peers.cryptofeed(exe, server.ws_url, server.rest_url, platform.redis_url, n_symbols,
                            platform.root / f"cryptofeed-{n_symbols}.log")

    def alive() -> None:
        if proc.poll() is not None:
            tail = (platform.root / f"cryptofeed-{n_symbols}.log").read_text(errors="replace").strip()
            raise RuntimeError(f"cryptofeed exited with {proc.returncode}: {tail.splitlines()[-1:] or ''}")

    try:
        with Subscriber(platform.redis_url, PEER_PATTERN) as sub:
            server.wait_streams(n_symbols * 5, alive=alive)
            sc.warm(server, sub, cfg.peer_warm_rounds)
            out = sc.storms(server, sub, cfg.peer_warm_rounds, cfg.repeats, sc.peer_key)
            alive()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server.wait_streams(0, timeout=15)
        with platform.client() as r:
            r.config_set("notify-keyspace-events", "")
        platform.flush()
    for s in out:
        log(f"  cryptofeed, {n_symbols * 5:,} closes at once: last write {s.last_ms:.0f} ms, p50 {s.p50_ms:.0f} ms, "
            f"lost {s.lost}")
    return out


def table(cfg: Config, m: dict[str, object], notes: list[str]) -> list[Row]:
    one, two = m["ceiling1"], m["ceiling2"]
    ceiling = sc.median(one)  # type: ignore[arg-type]
    floods: list[sc.Flood] = m["rates"]["floods"]  # type: ignore[index]
    lost = sum(f.lost for f in floods)
    rows = [
        Row(f"sustained, {cfg.rate_symbols * 5:,} streams", sc.median(m["rates"]["sustained"]), "/s",  # type: ignore[index]
            ceiling, "ceiling", ">= 0.5",
            f"sustained: highest paced rate with 0 lost and p99 lag <= {sc.MAX_LAG_MS:.0f} ms, 1 close per "
            f"{cfg.per_close} frames; median of {cfg.searches} searches of {cfg.search_steps} steps"),
        Row("fed as fast as it reads", sc.median([f.rate for f in floods]), "/s", ceiling, "ceiling", ">= 0.6",
            f"{lost} closes lost while fed as fast as it reads" if lost else ""),
    ]
    for n, key in zip(cfg.storm_symbols, ("storm_small", "storm_big"), strict=True):
        ours: list[sc.Storm] = m[key]  # type: ignore[assignment]
        theirs: list[sc.Storm] | None = m.get("peer_" + key)  # type: ignore[assignment]
        goal = "<1, <=200ms" if n == cfg.storm_symbols[1] else "< 1"
        lost = sum(s.lost for s in ours) + sum(s.lost for s in theirs or [])
        rows.append(Row(f"{n * 5:,}-close storm, last", sc.median([s.last_ms for s in ours]), "ms",
                        sc.median([s.last_ms for s in theirs]) if theirs else None,
                        "cryptofeed" if theirs else "", goal, f"{lost} closes lost in the storms" if lost else ""))
        rows.append(Row(f"{n * 5:,}-close storm, p50", sc.median([s.p50_ms for s in ours]), "ms",
                        sc.median([s.p50_ms for s in theirs]) if theirs else None, "cryptofeed" if theirs else ""))
    small, big = (n * 5 for n in cfg.storm_symbols)
    slope = (m["rss_big"] - m["rss_small"]) * 1024 / (big - small) / 1000  # type: ignore[operator]
    rows.append(Row("RSS per live stream", slope, "KB", m.get("talipp"), "talipp" if m.get("talipp") else "",
                    "< 2 KB", f"RSS per live stream: (RSS at {big:,} streams - RSS at {small:,}) / {big - small:,}, "
                    "both warmed the same way; the next row is (RSS at N - idle RSS) / N"))
    if m.get("numpy"):
        rows.append(Row("RSS per live stream", slope, "KB", m["numpy"], "numpy window"))  # type: ignore[arg-type]
    idle = m["startup"]["idle_kb"]  # type: ignore[index]
    rows.append(Row(f"RSS/stream, {big:,} - idle", (m["rss_big"] - idle) * 1024 / big / 1000, "KB"))  # type: ignore[operator]
    st = m["startup"]
    rows.append(Row("idle worker RSS", st["idle_kb"] / 1024, "MB", st["bare_kb"] / 1024, "bare python",  # type: ignore[index]
                    "< 35 MB"))
    rows.append(Row("livermore --help", st["help_ms"], "ms", st["pass_ms"], "python -c pass", "< 250 ms"))  # type: ignore[index]
    verdict = "the server is not the limit" if sc.median(two) > 1.05 * ceiling else \
        "WARNING: two clients got no more than one, so the server may be the limit"
    notes.insert(0, f"ceiling: 1 plain websockets client {ceiling:,.0f} frames/s; 2 clients together "  # type: ignore[arg-type]
                    f"{sc.median(two):,.0f} (x{sc.median(two) / ceiling:.2f}): {verdict}")
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
    m: dict[str, object] = {}
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
        m["startup"] = startup(platform, cfg)
        with LoadServer(max(cfg.storm_symbols[1], cfg.rate_symbols), procs=args.server_procs) as server:
            streams = cfg.rate_symbols * 5
            log(f"receive ceiling ({streams:,} streams, {cfg.flood_rounds * streams:,} frames a round)")
            m["ceiling1"], m["ceiling2"] = ceilings(server, cfg)
            log("worker frame rates")
            m["rates"] = rates(server, platform, cfg)
            for n, key in zip(cfg.storm_symbols, ("storm_small", "storm_big"), strict=True):
                log(f"close storm: {n * 5:,} streams")
                m[key], m["rss_" + key.split("_")[1]] = storms(server, platform, cfg, n)
                if exe is not None:
                    try:
                        m["peer_" + key] = peer_storms(server, platform, cfg, exe, n)
                    except RuntimeError as exc:
                        notes.append(f"cryptofeed storm of {n * 5:,} skipped: {str(exc).splitlines()[0][:200]}")
    if exe is not None:
        for kind in ("talipp", "numpy"):
            value, why = peers.memory_per_stream(exe, kind, cfg.memory_streams)
            m[kind] = value / 1000 if value is not None else None
            if why:
                notes.append(why)
    rows = table(cfg, m, notes)
    title = (f"livermore black box{' (--quick: smoke figures)' if args.quick else ''}: medians of {cfg.repeats}, "
             f"{os.cpu_count()} cores, load {load_start:.1f} -> {os.getloadavg()[0]:.1f}, "
             f"{time.monotonic() - started:.0f} s")
    sys.stderr.flush()
    print("\n" + render(rows, title))
    for note in notes:
        print("\n".join(wrap(note)))


if __name__ == "__main__":
    main()
