"""The peer: cryptofeed's Binance feed writing closed klines to Redis with CandlesRedis.

Run by bench_blackbox.py with the peers' own virtualenv (bench/.cache/peers), never imported
by Livermore. One Binance feed per timeframe (cryptofeed takes one candle interval per feed),
each over the same symbols S00000USDT..., so it subscribes exactly the streams the worker does;
feed `tf` writes to the ZSETs `candles{tf}-BINANCE-<symbol>`. Its only changes to cryptofeed
are the endpoints (the local load server) and accepting ws:// (cryptofeed insists on wss://;
both sides here speak plain WebSocket on 127.0.0.1).

    python bench/peer_cryptofeed.py WS_URL REST_URL REDIS_HOST REDIS_PORT N_SYMBOLS
"""

from __future__ import annotations

import asyncio
import sys

from cryptofeed import FeedHandler
from cryptofeed.backends.redis import CandlesRedis
from cryptofeed.connection import RestEndpoint, Routes, WebsocketEndpoint, WSAsyncConn
from cryptofeed.defines import CANDLES
from cryptofeed.exchanges import Binance

TIMEFRAMES = ("5m", "15m", "1h", "4h", "1d")


def allow_plain_ws() -> None:
    original = WSAsyncConn.__init__

    def init(self, address, *args, **kwargs):  # type: ignore[no-untyped-def]
        plain = address.startswith("ws://")
        original(self, "wss://" + address[5:] if plain else address, *args, **kwargs)
        self.address = address

    WSAsyncConn.__init__ = init


def main(ws_url: str, rest_url: str, host: str, port: int, n_symbols: int) -> None:
    class LocalBinance(Binance):
        websocket_endpoints = [WebsocketEndpoint(ws_url)]
        rest_endpoints = [RestEndpoint(rest_url, routes=Routes("/api/v3/exchangeInfo"))]

    allow_plain_ws()
    symbols = [f"S{k:05d}-USDT" for k in range(n_symbols)]
    fh = FeedHandler(config={"log": {"disabled": True}, "uvloop": True})
    for tf in TIMEFRAMES:
        fh.add_feed(LocalBinance(symbols=symbols, channels=[CANDLES], candle_interval=tf,
                                 callbacks={CANDLES: CandlesRedis(host=host, port=port, key=f"candles{tf}")}))
    # FeedHandler set uvloop's policy; its get_event_loop() no longer makes a loop on demand
    asyncio.set_event_loop(asyncio.new_event_loop())
    fh.run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
