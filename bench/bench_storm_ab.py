"""Close storms of two worker source trees, alternating: is a change faster, through the noise?

    .venv/bin/python bench/bench_storm_ab.py OTHER_SRC [--symbols 400] [--storms 12] [--warm 40]

On a shared 2-core machine the same storm takes 80 ms one minute and 120 ms the next, so two
black-box runs minutes apart cannot tell a 5 % change. Here two real workers run side by side:
this tree's (`python -m streaming`) and OTHER_SRC's (a source tree holding `streaming/`, e.g. an
older commit unpacked with `git archive <commit> streaming | tar -x -C DIR`; its dependencies
are ours). Each has its own Redis, database, load server and subscriber, all on 127.0.0.1, and
the same warm-up (`--warm` closed bars of every stream, so MACD-V and the alert rules run). Then
their storms alternate, a moment apart (this, other, other, this, ...): every stream (5 per
symbol) closes in the same instant, timed from the first closing frame sent to the last close
event. Both databases are migrated by this tree: the other tree must use the same schema.
Prints per tree the median and every storm, and this tree's median as a ratio to the other's.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import scenarios as sc
from bench.loadserver import LoadServer
from bench.processes import Platform, Worker, source_tree
from bench.subscriber import Subscriber

CLOSE_PATTERN = "channel:exchange:2:candle:close:*"


@dataclass(frozen=True)
class Side:
    """One tree's storms: (last event ms, p50 ms) each."""

    name: str
    storms: list[tuple[float, float]]

    @property
    def last(self) -> float:
        return statistics.median(s[0] for s in self.storms)

    @property
    def p50(self) -> float:
        return statistics.median(s[1] for s in self.storms)


def summary(this: Side, other: Side, closes: int) -> list[str]:
    """The printed lines (pure)."""
    out = [f"{closes:,} closes at once, {len(this.storms)} storms each, alternating:"]
    for side in (this, other):
        each = " ".join(f"{s[0]:.0f}" for s in sorted(side.storms))
        out.append(f"  {side.name}: last event median {side.last:.1f} ms, p50 {side.p50:.1f} ms")
        out.append(f"    every storm's last event (ms, sorted): {each}")
    out.append(f"this tree / other: last {this.last / other.last:.3f}, p50 {this.p50 / other.p50:.3f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("other_src", type=source_tree, metavar="OTHER_SRC", help="a source tree holding streaming/")
    ap.add_argument("--symbols", type=int, default=400, help="symbols per worker, 5 streams each (400)")
    ap.add_argument("--storms", type=int, default=12, help="storms per tree (12)")
    ap.add_argument("--warm", type=int, default=40, help="closed bars of every stream before the storms (40)")
    args = ap.parse_args()
    n = args.symbols
    with contextlib.ExitStack() as stack:
        sides = []
        for src in (None, args.other_src.resolve()):
            platform = stack.enter_context(Platform(Path(stack.enter_context(tempfile.TemporaryDirectory()))))
            server = stack.enter_context(LoadServer(n))
            sub = stack.enter_context(Subscriber(platform.redis_url, CLOSE_PATTERN))
            worker = stack.enter_context(Worker(platform, n, server.ws_url, server.rest_url, src))
            sides.append((server, sub, worker))
        for server, sub, worker in sides:
            server.wait_streams(n * 5, alive=worker.alive)
            sc.warm(server, sub, args.warm)
        storms: list[list[tuple[float, float]]] = [[], []]
        for i in range(args.storms):
            order = (0, 1) if i % 2 == 0 else (1, 0)  # who goes first alternates too
            for k in order:
                server, sub, worker = sides[k]
                time.sleep(0.7)
                s = sc.storm(server, sub, args.warm + i, sc.worker_key)
                worker.alive()
                if s.lost:  # late or lost: events still arriving in the next 30 s say which
                    late = sub.wait_count(s.lost, timeout=30)
                    raise SystemExit(f"{'this' if k == 0 else 'other'} tree lost {s.lost} closes in a storm "
                                     f"(none arrived for 10 s); {late} close events came in the next 30 s")
                storms[k].append((s.last_ms, s.p50_ms))
    print("\n".join(summary(Side("this tree", storms[0]), Side(str(args.other_src), storms[1]), n * 5)))


if __name__ == "__main__":
    main()
