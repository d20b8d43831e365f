"""Pure helpers for Binance stream names, URLs and packing streams into connections."""

from __future__ import annotations

from collections.abc import Iterable

URL_BUDGET = 6000  # characters of stream names in the connect URL; the rest go by SUBSCRIBE
PARAMS_PER_MESSAGE = 200


def stream_name(symbol: str, timeframe: str) -> str:
    return f"{symbol.lower()}@kline_{timeframe}"


def stream_key(name: str) -> tuple[str, str]:
    """(SYMBOL, timeframe) of a name made by `stream_name` (symbols are upper case)."""
    symbol, _, timeframe = name.partition("@kline_")
    return symbol.upper(), timeframe


def base_url(ws_url: str) -> str:
    url = ws_url.rstrip("/")
    for suffix in ("/stream", "/ws"):
        if url.endswith(suffix):
            return url[: -len(suffix)]
    return url


def connect_url(ws_url: str, streams: Iterable[str]) -> tuple[str, list[str]]:
    """The combined-stream URL carrying as many streams as fit, and the streams left to SUBSCRIBE."""
    in_url: list[str] = []
    rest: list[str] = []
    used = 0
    for s in streams:
        if used + len(s) + 1 <= URL_BUDGET and not rest:
            in_url.append(s)
            used += len(s) + 1
        else:
            rest.append(s)
    if not in_url:
        return base_url(ws_url) + "/stream", rest
    return base_url(ws_url) + "/stream?streams=" + "/".join(in_url), rest


def chunks(items: list[str], size: int = PARAMS_PER_MESSAGE) -> list[list[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def pack(streams: list[str], capacities: list[int], per_connection: int) -> tuple[list[list[str]], list[list[str]]]:
    """Fill existing connections' free capacity first, then new connections of `per_connection`.

    Returns (additions per existing connection, streams of each new connection).
    """
    additions: list[list[str]] = [[] for _ in capacities]
    i = 0
    for idx, free in enumerate(capacities):
        take = streams[i:i + max(0, free)]
        additions[idx] = take
        i += len(take)
    new = [streams[j:j + per_connection] for j in range(i, len(streams), per_connection)]
    return additions, new
