"""Message text: one alert, or a digest of many grouped by symbol and timeframe. Pure.

Chat services cap a message (Discord 2000 characters, Telegram 4096): a digest lists as many
groups as fit and ends with how many alerts it could not list, so it is always one message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby

from streaming.notify.events import AlertEvent


def describe_label(alert: AlertEvent) -> str:
    """`crossed -200 (oversold)`, `reversal from overbought`."""
    if alert.type == "level" and alert.level is not None:
        side = "oversold" if alert.level < 0 else "overbought"
        return f"crossed {alert.level:+g} ({side})"
    if alert.label.startswith("reversal_"):
        return f"reversal from {alert.label.removeprefix('reversal_')}"
    return alert.label


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1f}"


def _price(x: float) -> str:
    return f"{x:,.8g}" if abs(x) < 1000 else f"{x:,.2f}"


def candle_time(alert: AlertEvent) -> str:
    return datetime.fromtimestamp(alert.timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def alert_title(alert: AlertEvent) -> str:
    return f"{alert.symbol} {alert.timeframe}: MACD-V {describe_label(alert)}"


def alert_text(alert: AlertEvent) -> str:
    return "\n".join([
        f"{alert.source_exchange} · {alert.symbol} · {alert.timeframe}",
        f"MACD-V {_num(alert.macd_v)} (signal {_num(alert.signal)}, histogram {_num(alert.histogram)})",
        f"{describe_label(alert).capitalize()} at price {_price(alert.price)}",
        f"candle {candle_time(alert)}",
    ])


def _key(a: AlertEvent) -> tuple:
    return (a.symbol, a.source_exchange, a.timeframe, a.timestamp, a.label)


def digest_title(alerts: Sequence[AlertEvent]) -> str:
    symbols = len({(a.source_exchange_id, a.symbol) for a in alerts})
    return f"Livermore: {len(alerts)} MACD-V alerts on {symbols} symbol{'s' if symbols != 1 else ''}"


def digest_lines(alerts: Sequence[AlertEvent]) -> list[tuple[str, int]]:
    """(line, alerts it lists): a header per symbol, then one line per timeframe."""
    out: list[tuple[str, int]] = []
    ordered = sorted(alerts, key=_key)
    for (symbol, exchange), by_symbol in groupby(ordered, key=lambda a: (a.symbol, a.source_exchange)):
        out.append((f"{symbol} ({exchange})", 0))
        for tf, by_tf in groupby(by_symbol, key=lambda a: a.timeframe):
            items = list(by_tf)
            what = ", ".join(f"{describe_label(a)} {_num(a.macd_v)}" for a in items)
            out.append((f"  {tf}: {what}", len(items)))
    return out


def digest_text(alerts: Sequence[AlertEvent], max_chars: int = 2000) -> str:
    """The digest body within `max_chars`, ending with `... and N more alerts` when cut."""
    if max_chars < 80:
        raise ValueError("max_chars must leave room for at least one line")
    lines = digest_lines(alerts)
    total = len(alerts)
    kept: list[str] = []
    listed = 0
    size = 0
    for i, (line, n) in enumerate(lines):
        tail = 0 if listed + n == total and i == len(lines) - 1 else len(f"\n... and {total} more alerts")
        if size + len(line) + 1 + tail > max_chars:
            break
        # a symbol header is only worth its line if a timeframe line follows it
        if n == 0 and (i + 1 == len(lines) or size + len(line) + len(lines[i + 1][0]) + 2 + tail > max_chars):
            break
        kept.append(line)
        size += len(line) + 1
        listed += n
    if listed < total:
        kept.append(f"... and {total - listed} more alert{'s' if total - listed != 1 else ''}")
    return "\n".join(kept)
