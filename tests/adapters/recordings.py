"""Readers of the recorded WebSocket frames shipped in streaming/sim/data (exactly as received)."""

from __future__ import annotations

import json
from pathlib import Path


def coinbase_frames(recordings_dir: Path) -> list[str]:
    path = recordings_dir / "coinbase" / "ws_recording_2026-08-09_btc_eth.jsonl"
    out = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec["t"] == "recv":
            out.append(rec["data"])
    return out


def binance_frames(recordings_dir: Path) -> list[str]:
    path = recordings_dir / "binance" / "ws_kline_1m_combined_stream_2021-10-12.txt"
    return [line.split(": ", 1)[1] for line in path.read_text().splitlines() if line.strip()]
