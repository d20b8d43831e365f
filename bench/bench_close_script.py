"""Where the close script's time goes in Redis, per close: the Redis side of a storm.

    .venv/bin/python bench/bench_close_script.py [--streams 512] [--bars 40] [--rounds 20]

A private redis-server (the one the platform runs). `--streams` 5m streams are staged with
`stage_close` exactly as the pipeline stages them (`--bars` closed bars each first, so MACD-V
and the alert rules run), then `--rounds` rounds of one close per stream, each round one call of
CLOSE_BATCH, in order: every close is new, as in a storm (the database is emptied before each
pass). `INFO commandstats` gives the script's time per close and, inside it, each command's.
Two scripts over the same arguments give the parts a close pays besides its commands: decoding
the MessagePack argument alone, and as many `PING`s from Lua per close as the script ran
commands (less the PINGs' own time: what the calls cost as calls). The three scripts run 5
times each, alternating, and their medians count. Each part is printed as a share of the whole
script: the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from bench.staged import STEP_MS, bar, stream_heads
from streaming import keys
from streaming.pipeline.close_script import pack_specs
from streaming.pipeline.config import PipelineConfig
from streaming.pipeline.staging import stage_close
from streaming.pipeline.state import StreamState
from streaming.redis_server import RedisServer
from streaming.store import scripts

DECODE_ONLY = "local specs = cmsgpack.unpack(ARGV[4]) return #specs"


def pings(per_close: int) -> str:
    """A script that decodes the batch and makes `per_close` calls of the cheapest command a close."""
    return f"""local specs = cmsgpack.unpack(ARGV[4])
for a = 1, #specs do for i = 1, {per_close} do redis.call('PING') end end
return #specs"""


REPEATS = 5


def batches(streams: int, bars: int, rounds: int) -> list[bytes]:
    """The script's batch argument of each measured round (staged after `bars` earlier rounds)."""
    heads = stream_heads(streams)
    states = [StreamState() for _ in range(streams)]
    out = []
    for b in range(bars + rounds):
        specs = [stage_close(states[i], heads[i], bar(i, b), "websocket", STEP_MS)[0] for i in range(streams)]
        if b >= bars:
            out.append(pack_specs(specs))
    return out


class Measured(NamedTuple):
    script_us: float  # the script's time a close
    inside_us: dict[str, float]  # each command's time a close, inside it
    calls: float  # commands it ran a close


def per_close(r: redis.Redis, script: str, calls: list[bytes], closes: int) -> Measured:
    """The script's µs per close over `calls`, each command's inside it, and how many it ran."""
    config = PipelineConfig()
    sha = r.script_load(script)
    args = [keys.alerts_channel(2), config.alerts_stream_maxlen, config.max_candles]
    r.config_resetstat()
    for batch in calls:
        r.evalsha(sha, 1, keys.ALERTS_STREAM, *args, batch)
    stats = r.info("commandstats")
    total = closes * len(calls)
    script_us = stats.pop("cmdstat_evalsha")["usec"] / total
    # the commands the script ran (not this function's own CONFIG, SCRIPT and INFO)
    ran = {name: v for name, v in ((n.removeprefix("cmdstat_"), v) for n, v in stats.items())
           if not name.startswith(("config", "script", "info"))}
    return Measured(script_us, {name: v["usec"] / total for name, v in ran.items()},
                    sum(v["calls"] for v in ran.values()) / total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=512, help="closes per call (default 512, the pipeline's batch)")
    ap.add_argument("--bars", type=int, default=40, help="closes staged per stream before (default 40)")
    ap.add_argument("--rounds", type=int, default=20, help="measured calls (default 20)")
    args = ap.parse_args()
    calls = batches(args.streams, args.bars, args.rounds)
    with tempfile.TemporaryDirectory(prefix="livermore-bench-") as d:
        server = RedisServer(Path(d) / "redis", persistent=False)
        url = server.start()
        try:
            r = redis.Redis.from_url(url)
            version = r.info("server")["redis_version"]
            # the three scripts alternate, REPEATS times, and the medians count; the close script
            # starts each time from an empty database, so every close is new again
            closes, decodes, overheads = [], [], []
            for _ in range(REPEATS):
                r.flushall()
                closes.append(per_close(r, scripts.CLOSE_BATCH, calls, args.streams))
                n = round(closes[-1].calls)
                decodes.append(per_close(r, DECODE_ONLY, calls, args.streams).script_us)
                ping = per_close(r, pings(n), calls, args.streams)
                # the pings' script less decoding and less the pings' own work: n calls as calls
                overheads.append(ping.script_us - decodes[-1] - ping.inside_us.get("ping", 0.0))
            r.close()
        finally:
            server.stop()
    close = closes[-1]
    whole = statistics.median(c.script_us for c in closes)
    inside = {name: statistics.median(c.inside_us.get(name, 0.0) for c in closes) for name in close.inside_us}
    commands = statistics.median(sum(c.inside_us.values()) for c in closes)
    decode, calls_overhead = statistics.median(decodes), statistics.median(overheads)
    print(f"CLOSE_BATCH, Redis {version}: {args.rounds} calls of {args.streams} new closes, "
          f"{close.calls:.2f} commands a close")
    print(f"  whole script          {whole:6.2f} us a close  1.00")
    rows = [("decoding the argument", decode), (f"{n} calls' own overhead", calls_overhead),
            ("the commands", commands), ("the script's own Lua", whole - decode - calls_overhead - commands)]
    for name, us in rows:
        print(f"  {name:<21} {us:6.2f} us a close  {us / whole:.2f}")
    for name, us in sorted(inside.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<19} {us:6.2f} us a close")


if __name__ == "__main__":
    main()
