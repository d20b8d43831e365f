"""Loading the real recordings the simulator serves (streaming/sim/data, or LIVERMORE_SIM_RECORDINGS).
Missing files are no error: the simulator then serves its synthetic data only, and says so once in the log."""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

COINBASE_PRODUCTS = "coinbase/rest_market_products.json"
COINBASE_ACCOUNTS = ("coinbase/rest_list_accounts_all_call_1.json", "coinbase/rest_list_accounts_all_call_2.json")
COINBASE_WS = "coinbase/ws_recording_2026-08-09_btc_eth.jsonl"
BINANCE_EXCHANGE_INFO = "binance/rest_exchangeInfo_2021-10-12.json"
BINANCE_WS = "binance/ws_kline_1m_combined_stream_2021-10-12.txt"


@dataclass(frozen=True)
class RecordedFrame:
    """One received text frame of a recording, with the time it arrived (epoch seconds)."""

    ts: float
    text: str


def _read_json(root: Path | None, rel: str) -> Any | None:
    if root is None:
        return None
    path = root / rel
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        log.warning("simulator: recording %s not found; serving synthetic data only", path)
    except (OSError, ValueError) as exc:
        log.warning("simulator: recording %s unreadable (%s); serving synthetic data only", path, exc)
    return None


@functools.lru_cache(maxsize=8)
def coinbase_products(root: Path | None) -> list[dict[str, Any]]:
    body = _read_json(root, COINBASE_PRODUCTS)
    return list(body.get("products", [])) if isinstance(body, dict) else []


@functools.lru_cache(maxsize=8)
def coinbase_accounts(root: Path | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rel in COINBASE_ACCOUNTS:
        body = _read_json(root, rel)
        for acc in body.get("accounts", []) if isinstance(body, dict) else []:
            if acc.get("uuid") not in seen:
                seen.add(acc.get("uuid"))
                out.append(acc)
    return out


@functools.lru_cache(maxsize=8)
def binance_exchange_info(root: Path | None) -> dict[str, Any]:
    body = _read_json(root, BINANCE_EXCHANGE_INFO)
    return body if isinstance(body, dict) else {"timezone": "UTC", "serverTime": 0, "rateLimits": [],
                                                "exchangeFilters": [], "symbols": []}


def read_frames(path: Path) -> list[RecordedFrame]:
    """Received frames of a recording, in order: Coinbase .jsonl ("recv" lines) or Binance
    `<recv time>: <frame>` lines."""
    frames: list[RecordedFrame] = []
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                obj = json.loads(line)
                if obj.get("t") == "recv" and isinstance(obj.get("data"), str):
                    frames.append(RecordedFrame(float(obj.get("ts", 0.0)), obj["data"]))
            else:
                ts, sep, text = line.partition(": ")
                if sep:
                    frames.append(RecordedFrame(float(ts), text))
    return frames
