"""Adapter hot-path benchmark: the receive ceiling vs receive + parse + normalise.

A local server (own process, 127.0.0.1) writes N frames shaped like the recordings (Coinbase
candle updates, Binance combined-stream klines), pre-encoded, in big chunks as fast as the client
reads (baseline.fast_serving_in_process), so the client is the limit. Printed per exchange:
  (a) the receive ceiling: a plain websockets client receiving without parsing (frames/s)
  (s) two such clients at once, together (frames/s): more than (a) shows (a) is client-bound
  (b) receive + parse + normalise through the adapters' parser, stale tracker and book (frames/s)
  (c) parse + normalise alone, as a fraction of the ceiling's receive time (target < 1/3)
Each figure is the median of --repeats runs.

    .venv/bin/python bench/bench_adapters.py [--frames 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baseline import fast_serving_in_process, receive

from streaming.adapters.binance.kline_book import KlineBook
from streaming.adapters.binance.parse import parse_frame as binance_parse
from streaming.adapters.coinbase.candle_book import CandleBook
from streaming.adapters.coinbase.parse import parse_frame as coinbase_parse
from streaming.adapters.staleness import StaleTracker

T0 = 1786309500
# the client's options: no compression (the fast server never compresses), frames up to 16 MiB
WS = {"max_size": 2**24, "compression": None}


def coinbase_frames(n: int) -> list[str]:
    out = []
    for i in range(n):
        start = T0 + (i // 200) * 300
        c = {"start": str(start), "high": f"{1919.6 + i % 7:.2f}", "low": "1919.27", "open": "1919.58",
             "close": f"{1919.41 + i % 5 / 100:.2f}", "volume": f"{36.36630914 + i / 1000:.8f}",
             "product_id": f"P{i % 50}-USD"}
        out.append(json.dumps({"channel": "candles", "timestamp": "2026-08-09T21:05:51.491081826Z",
                               "sequence_num": i, "events": [{"type": "update", "candles": [c]}]},
                              separators=(",", ":")))
    return out


def binance_frames(n: int) -> list[str]:
    out = []
    for i in range(n):
        t = 1633998000000 + (i // 200) * 300_000
        sym = f"S{i % 50}USDT"
        k = {"t": t, "T": t + 299_999, "s": sym, "i": "5m", "f": 439572, "L": 439585 + i, "o": "13.72120000",
             "c": f"{13.7664 + i % 9 / 1e4:.8f}", "h": "13.80760000", "l": "13.72120000", "v": f"{536.51 + i:.8f}",
             "n": 19, "x": i % 200 == 199, "q": "7380.5", "V": "1", "Q": "1", "B": "0"}
        out.append(json.dumps({"stream": f"{sym.lower()}@kline_5m",
                               "data": {"e": "kline", "E": t + 1000, "s": sym, "k": k}}, separators=(",", ":")))
    return out


def _handlers():  # type: ignore[no-untyped-def]
    cb_book = CandleBook()
    bn_book = KlineBook("binance")
    # the live streams note every frame of a stream for stale-stream detection: part of the hot path
    cb_stale = StaleTracker(60, 1)
    cb_stale.watch((f"P{i}-USD", "5m") for i in range(50))
    bn_stale = StaleTracker(60, 2)
    bn_stale.watch((f"S{i}USDT", "5m") for i in range(50))

    def coinbase(raw: bytes) -> None:
        msg = coinbase_parse(raw)
        for sym, candle in msg.updates:
            cb_stale.frame((sym, "5m"))
            cb_book.update(sym, candle)

    def binance(raw: bytes) -> None:
        msg = binance_parse(raw)
        if msg.candle is not None:
            bn_stale.frame((msg.symbol, msg.interval))
            bn_book.on_kline(msg.symbol, msg.interval, 300_000, msg.candle, msg.closed)

    return {"coinbase": coinbase, "binance": binance}


def _raw_in_process(url: str, n: int, barrier, out) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    out.put(asyncio.run(receive(url, n, None, decode=False, **WS)))


def together(url: str, n: int, clients: int = 2) -> float:
    """Frames/s that `clients` raw receivers (own processes, started together) get in total."""
    barrier, out = multiprocessing.Barrier(clients), multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_raw_in_process, args=(url, n, barrier, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    seconds = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    return clients * n / max(seconds)


def run(exchange: str, frames: list[str], repeats: int) -> dict[str, float]:
    n = len(frames)
    raw, full, pair = [], [], []
    with fast_serving_in_process(frames) as url:
        for _ in range(repeats):
            raw.append(asyncio.run(receive(url, n, None, decode=False, **WS)))
            full.append(asyncio.run(receive(url, n, _handlers()[exchange], decode=False, **WS)))
            pair.append(together(url, n))
    encoded = [f.encode() for f in frames]
    parse = []
    for _ in range(repeats):
        handle = _handlers()[exchange]
        t = time.perf_counter()
        for raw_frame in encoded:
            handle(raw_frame)
        parse.append(time.perf_counter() - t)
    raw_s, full_s, parse_s = statistics.median(raw), statistics.median(full), statistics.median(parse)
    return {"raw_fps": n / raw_s, "pair_fps": statistics.median(pair), "full_fps": n / full_s,
            "parse_fps": n / parse_s, "ratio": parse_s / raw_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{'exchange':<9}{'(a) ceiling/s':>14}{'(s) 2 clients/s':>16}{'(b) recv+parse/s':>17}"
          f"{'parse-only/s':>13}{'(c) share':>10}")
    for exchange, build in (("coinbase", coinbase_frames), ("binance", binance_frames)):
        r = run(exchange, build(args.frames), args.repeats)
        print(f"{exchange:<9}{r['raw_fps']:>14,.0f}{r['pair_fps']:>16,.0f}{r['full_fps']:>17,.0f}"
              f"{r['parse_fps']:>13,.0f}{r['ratio']:>10.3f}")
        if r["pair_fps"] <= 1.05 * r["raw_fps"]:
            print(f"{'':<9}WARNING: two clients got no more than one: the server may be the limit, or other "
                  "work holds the cores")
        if r["full_fps"] > r["raw_fps"]:
            print(f"{'':<9}WARNING: receive + parse beat the ceiling: the ceiling is not a ceiling (noise?)")
    print("(c) share: parse + normalise time / ceiling receive time of the same frames (target < 0.333)")


if __name__ == "__main__":
    main()
