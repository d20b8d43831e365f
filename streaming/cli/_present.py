"""How the CLI words the platform's state for a person: one vocabulary for `status`, `workers`
and `start`, every line wrapped to fit 80 columns (pure: data in, lines out)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from streaming.cli._common import TERMINAL_WIDTH
from streaming.errors import printable
from streaming.timestamps import parse_utc_iso

NO_SHARD = "all"  # a worker without --shard serves every symbol: said the same way everywhere


def fit(line: str, indent: str = "", more: str = "    ") -> list[str]:
    """`line` wrapped at 80 columns: continuation lines indented by `indent` + `more`; a path or
    URL is never cut (copy-pasting it must work)."""
    return textwrap.wrap(line, TERMINAL_WIDTH, initial_indent=indent, subsequent_indent=indent + more,
                         break_on_hyphens=False, break_long_words=False) or [indent.rstrip()]


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{max(0.0, seconds):.1f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def when(iso: str | None) -> str:
    """'2026-11-24 10:00:00 UTC' from an ISO time; '-' when unset."""
    stamp = parse_utc_iso(iso) if iso else None
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if stamp else "-"


def age_s(iso: str | None, now: datetime | None = None) -> float | None:
    stamp = parse_utc_iso(iso) if iso else None
    return None if stamp is None else ((now or datetime.now(UTC)) - stamp).total_seconds()


def progress_words(progress: Mapping[str, Any]) -> str:
    """'warm-up 120/250 streams, 36,000 candles, about 12s left'."""
    done, total = int(progress.get("streams_done") or 0), int(progress.get("streams_total") or 0)
    text = f"warm-up {done}/{total} streams"
    if isinstance(progress.get("candles"), int):
        text += f", {progress['candles']:,} candles"
    eta = progress.get("eta_s")
    if isinstance(eta, int | float) and done < total:
        text += f", about {duration(float(eta))} left"
    return text


def status_progress(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The warm-up of an exchange status hash while it runs (`warmup_*` fields), else None."""
    def number(name: str) -> int | None:
        text = str(status.get(name) or "")
        return int(text) if text.isdigit() else None

    done, total = number("warmup_done"), number("warmup_total")
    if done is None or total is None or done >= total:
        return None
    return {"streams_done": done, "streams_total": total, "candles": number("warmup_candles"),
            "eta_s": number("warmup_eta_s")}


def worker_lines(worker: Mapping[str, Any]) -> list[str]:
    """A live worker: who it is, then one line per exchange with its state (and warm-up)."""
    user = worker.get("user")
    head = (f"worker {printable(str(worker.get('worker_id')))} (pid {worker.get('pid')}, "
            f"shard {worker.get('shard') or NO_SHARD}, user {user if user is not None else 'any'}), "
            f"heartbeat {ago(worker.get('age_s'))}")
    lines = fit(head, "  ")
    exchanges = worker.get("exchanges") or {}
    warm_up = worker.get("warm_up") or {}
    if not exchanges:
        lines += fit("no exchange (idle until a start command)", "    ")
    for name, state in sorted(exchanges.items()):
        text = f"{printable(str(name))} {printable(str(state))}"
        if isinstance(warm_up.get(name), Mapping):
            text += f": {progress_words(warm_up[name])}"
        lines += fit(text, "    ")
    return lines


def exchange_lines(row: Mapping[str, Any], now: datetime | None = None) -> list[str]:
    """An exchange: its state in words, since when / why, its warm-up while it runs, its stale streams
    and the streams still missing history."""
    state = str(row.get("connection_state") or "idle")
    name = f"{row['name']} ({row.get('display_name') or row['name']})"
    if not row.get("active", True):
        name += ", inactive"
    detail = ""
    if state == "connected":
        detail = f" since {when(row.get('connected_at'))}"
        frame = age_s(row.get("last_heartbeat"), now)
        if frame is not None:
            detail += f", last frame {ago(frame)}"
    lines = fit(f"{name}: {state}{detail}", "  ")
    progress = row.get("warm_up")
    if isinstance(progress, Mapping):
        lines += fit(progress_words(progress), "    ")
    elif isinstance(row.get("warmup_requests"), int) and state in ("connected", "connecting"):
        lines += fit(f"warm-up done with {row['warmup_requests']:,} REST requests", "    ")
    stale = row.get("stale_streams")
    if isinstance(stale, int) and stale > 0 and state == "connected":
        lines += fit(f"{stale} stale stream{'s' if stale > 1 else ''}: no frame past the threshold, resubscribed",
                     "    ")
    missing = row.get("history_missing")
    if isinstance(missing, int) and missing > 0 and state in ("connected", "connecting"):
        lines += fit(f"{missing} stream{'s' if missing > 1 else ''} missing history: warm-up failed, retrying",
                     "    ")
    error = row.get("last_error")
    if error and state != "idle":
        lines += fit(f"last error: {printable(str(error))[:400]}", "    ")
    return lines


def symbols_words(symbols: Sequence[str], shown: int = 8) -> str:
    head = ", ".join(printable(s) for s in symbols[:shown])
    return head + (f" and {len(symbols) - shown} more" if len(symbols) > shown else "")
