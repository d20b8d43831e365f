"""Adapter hot-path benchmark: raw `websockets` receive vs receive + parse + normalise.

A local `websockets` server (own process, 127.0.0.1) sends N frames shaped like the recordings
(Coinbase candle updates, Binance combined-stream klines). Printed per exchange:
  (a) raw receive rate of a websockets client (frames/s, no parsing)
  (b) receive + parse + normalise through the adapters' parser and book (frames/s)
  (c) parse + normalise alone, as a fraction of the raw receive time (target < 1/3)

    .venv/bin/python bench/bench_adapters.py [--frames 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from baseline import receive, serving_in_process

from streaming.adapters.binance.kline_book import KlineBook
from streaming.adapters.binance.parse import parse_frame as binance_parse
from streaming.adapters.coinbase.candle_book import CandleBook
from streaming.adapters.coinbase.parse import parse_frame as coinbase_parse

T0 = 1786309500
# both ends of the loopback connection: no compression, frames up to 16 MiB
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

    def coinbase(raw: bytes) -> None:
        msg = coinbase_parse(raw)
        for sym, candle in msg.updates:
            cb_book.update(sym, candle)

    def binance(raw: bytes) -> None:
        msg = binance_parse(raw)
        if msg.candle is not None:
            bn_book.on_kline(msg.symbol, msg.interval, 300_000, msg.candle, msg.closed)

    return {"coinbase": coinbase, "binance": binance}


def run(exchange: str, frames: list[str]) -> dict[str, float]:
    n = len(frames)
    with serving_in_process(frames, **WS) as url:
        raw_s = asyncio.run(receive(url, n, None, decode=False, **WS))
        full_s = asyncio.run(receive(url, n, _handlers()[exchange], decode=False, **WS))
    handle = _handlers()[exchange]
    encoded = [f.encode() for f in frames]
    t = time.perf_counter()
    for raw in encoded:
        handle(raw)
    parse_s = time.perf_counter() - t
    return {"raw_fps": n / raw_s, "full_fps": n / full_s, "parse_fps": n / parse_s, "ratio": parse_s / raw_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200_000)
    args = ap.parse_args()
    print(f"{'exchange':<10} {'(a) raw recv/s':>15} {'(b) recv+parse/s':>17} {'parse-only/s':>13} "
          f"{'(c) parse/raw':>14}")
    for exchange, build in (("coinbase", coinbase_frames), ("binance", binance_frames)):
        r = run(exchange, build(args.frames))
        verdict = "OK" if r["ratio"] < 1 / 3 else "OVER TARGET"
        print(f"{exchange:<10} {r['raw_fps']:>15,.0f} {r['full_fps']:>17,.0f} {r['parse_fps']:>13,.0f} "
              f"{r['ratio']:>13.3f}  (target < 0.333: {verdict})")


if __name__ == "__main__":
    main()
