"""Where the close script's time goes in Redis, per close: the Redis side of a storm.

    .venv/bin/python bench/bench_close_script.py [--streams 512] [--bars 40] [--rounds 20]

A private redis-server (the one the platform runs). `--streams` 5m streams are staged with
`stage_close` exactly as the pipeline stages them (`--bars` closed bars each first, so MACD-V
and the alert rules run), then `--rounds` rounds of one close per stream, each round one call of
CLOSE_BATCH, in order: every close is new, as in a storm. `INFO commandstats` gives the script's
time per close and, inside it, each command's. Two scripts over the same arguments give the
parts a close pays besides its commands: decoding the MessagePack argument alone, and seven
`PING`s from Lua per close (a close makes seven calls). Each part is printed as a share of the
whole script: the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from streaming import keys
from streaming.models import Candle
from streaming.pipeline.close_script import pack_specs
from streaming.pipeline.config import PipelineConfig
from streaming.pipeline.staging import stage_close, stream_head
from streaming.pipeline.state import StreamState
from streaming.redis_server import RedisServer
from streaming.store import scripts

DECODE_ONLY = "local specs = cmsgpack.unpack(ARGV[4]) return #specs"
SEVEN_PINGS = """local specs = cmsgpack.unpack(ARGV[4])
for a = 1, #specs do for i = 1, 7 do redis.call('PING') end end
return #specs"""
T0 = 1_700_000_100_000 - 1_700_000_100_000 % 300_000


def batches(streams: int, bars: int, rounds: int) -> list[bytes]:
    """The script's batch argument of each measured round (staged after `bars` earlier rounds)."""
    heads = [stream_head(2, "binance", f"S{i:05d}USDT", "5m", (), 0) for i in range(streams)]
    states = [StreamState() for _ in range(streams)]
    out = []
    for b in range(bars + rounds):
        specs = []
        for i in range(streams):
            p = 100 + (i % 50) + (b % 7) * 0.3 + (b % 11) * 0.05
            bar = Candle(T0 + b * 300_000, p, p * 1.01, p * 0.99, p * 1.001, 12.5)
            specs.append(stage_close(states[i], heads[i], bar, "websocket", 300_000)[0])
        if b >= bars:
            out.append(pack_specs(specs))
    return out


def per_close_us(r: redis.Redis, script: str, calls: list[bytes], closes: int) -> tuple[float, dict[str, float]]:
    """The script's µs per close over `calls`, and each command's µs per close inside it."""
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
    inside = {name: v["usec"] / total for name, v in ((n.removeprefix("cmdstat_"), v) for n, v in stats.items())
              if not name.startswith(("config", "script", "info"))}
    return script_us, inside


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
            decode, _ = per_close_us(r, DECODE_ONLY, calls, args.streams)
            pings, _ = per_close_us(r, SEVEN_PINGS, calls, args.streams)
            whole, inside = per_close_us(r, scripts.CLOSE_BATCH, calls, args.streams)
            r.close()
        finally:
            server.stop()
    commands = sum(inside.values())
    calls_overhead = max(0.0, pings - decode - inside.get("ping", 0.0))
    print(f"CLOSE_BATCH, Redis {version}: {args.rounds} calls of {args.streams} new closes")
    print(f"  whole script          {whole:6.2f} us a close  1.00")
    rows = [("decoding the argument", decode), ("7 calls' own overhead", calls_overhead),
            ("the commands", commands), ("the script's own Lua", whole - decode - calls_overhead - commands)]
    for name, us in rows:
        print(f"  {name:<21} {us:6.2f} us a close  {us / whole:.2f}")
    for name, us in sorted(inside.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<19} {us:6.2f} us a close")


if __name__ == "__main__":
    main()
