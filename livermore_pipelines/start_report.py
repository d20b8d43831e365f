"""What the start_streaming op tells the run log and its metadata (pure): warm-up tenths, refusals, warm-up totals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class ProgressTenths:
    """Feeds ControlClient.send's on_progress; says a line each time the warm-up passes a tenth.

    The client calls on_progress whenever the summed progress moves (many times a second on a
    big universe); a run log wants ten lines, not thousands.
    """

    def __init__(self, exchange: str, say: Callable[[str], None]) -> None:
        self.exchange = exchange
        self.say = say
        self.tenth = -1

    def __call__(self, progress: Mapping[str, Any]) -> None:
        done, total = _int(progress.get("streams_done")), _int(progress.get("streams_total"))
        if not total:
            return
        tenth = min(10, done * 10 // total)
        if tenth <= self.tenth:
            return
        self.tenth = tenth
        text = f"{self.exchange} warm-up {tenth * 10}%: {done}/{total} streams"
        candles = progress.get("candles")
        if isinstance(candles, int):
            text += f", {candles:,} candles"
        eta = progress.get("eta_s")
        if isinstance(eta, int | float) and done < total:
            text += f", about {eta:.0f} s left"
        requests = progress.get("requests")  # newer workers say it once the warm-up is done
        if isinstance(requests, int) and not isinstance(requests, bool):
            text += f", {requests:,} REST requests"
        self.say(text)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _results(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """One worker's answer, or each worker's when several answered (ControlClient's aggregate)."""
    workers = result.get("workers")
    if isinstance(workers, Mapping):
        return [r for r in workers.values() if isinstance(r, Mapping)]
    return [result]


def refused(result: Mapping[str, Any]) -> dict[str, str]:
    """Symbols the exchange refused, with its reasons, over all the workers that answered."""
    out: dict[str, str] = {}
    for r in _results(result):
        for symbol, reason in (r.get("refused") or {}).items() if isinstance(r.get("refused"), Mapping) else ():
            out[str(symbol)] = str(reason)
    return dict(sorted(out.items()))


def warm_up(result: Mapping[str, Any]) -> dict[str, Any]:
    """The warm-up totals of a start answer: streams, candles, seconds, and REST requests when the answer has them."""
    streams = candles = requests = 0
    seconds = 0.0
    any_requests = False
    for r in _results(result):
        w = r.get("warm_up")
        if not isinstance(w, Mapping):
            continue
        streams += _int(w.get("streams_total"))
        candles += _int(w.get("candles"))
        if isinstance(w.get("seconds"), int | float):
            seconds = max(seconds, float(w["seconds"]))  # the workers warm up side by side
        sent = w.get("warmup_requests", r.get("warmup_requests"))  # newer workers count their REST requests
        if isinstance(sent, int) and not isinstance(sent, bool):
            requests += sent
            any_requests = True
    out: dict[str, Any] = {"streams": streams, "candles": candles, "seconds": round(seconds, 1)}
    if any_requests:
        out["requests"] = requests
    return out
