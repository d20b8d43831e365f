"""Alert payloads (streaming.contracts.market.AlertEvent) and their archive from the durable
Redis stream to the database.

The pipeline publishes each alert on `channel:alerts:{exchange_id}` and XADDs it to
`stream:alerts` (field "json") inside the same atomic close script (streaming.store.scripts),
so a bar's alerts are emitted exactly once. `archive_alerts` copies the stream into
`alert_history`; the alert id is deterministic, so archiving twice inserts once.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import sqlalchemy as sa

from streaming import keys
from streaming.alerts.rules import AlertSignal
from streaming.contracts.market import AlertEvent, decode_alert, encode_alert
from streaming.db.schema import alert_history
from streaming.redis_text import as_str

# AlertEvent, encode_alert and decode_alert live in streaming.contracts; importing them from here works too
__all__ = ["AlertEvent", "alert_event", "alert_id", "archive_alerts", "decode_alert", "encode_alert"]

log = logging.getLogger(__name__)

STREAM_MAXLEN = 100_000


def alert_id(exchange_id: int, symbol: str, timeframe: str, timestamp: int, label: str) -> str:
    return f"{exchange_id}:{symbol}:{timeframe}:{timestamp}:{label}"


def alert_event(exchange_id: int, exchange: str, symbol: str, timeframe: str, timestamp: int, price: float,
                signal: AlertSignal, triggered_at: datetime | None = None) -> AlertEvent:
    at = (triggered_at or datetime.now(UTC)).astimezone(UTC).isoformat()
    return AlertEvent(alert_id(exchange_id, symbol, timeframe, timestamp, signal.label), exchange_id, exchange,
                      symbol, timeframe, signal.type, signal.label, signal.level, signal.macd_v, signal.signal,
                      signal.histogram, price, timestamp, at)


# --- archive --------------------------------------------------------------------------------

def _insert_ignoring_duplicates(engine: sa.Engine) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(alert_history).on_conflict_do_nothing(index_elements=["alert_id"])
    if engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(alert_history).on_conflict_do_nothing(index_elements=["alert_id"])
    raise ValueError(f"archive_alerts supports sqlite and postgresql, not {engine.dialect.name}")


def _row(entry_id: str, fields: dict[Any, Any]) -> dict[str, Any] | None:
    raw = fields.get(b"json", fields.get("json"))
    if raw is None:
        log.warning("alert stream entry %s has no 'json' field; skipped", entry_id)
        return None
    try:
        a = decode_alert(raw)
        at = datetime.fromisoformat(a.triggered_at)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        log.warning("alert stream entry %s is malformed (%s); skipped", entry_id, exc)
        return None
    if not math.isfinite(a.macd_v):
        log.warning("alert stream entry %s has a non-finite MACD-V; skipped", entry_id)
        return None
    return {
        "alert_id": a.id,
        "exchange_id": a.source_exchange_id,
        "symbol": a.symbol,
        "timeframe": a.timeframe,
        "alert_type": a.type,
        "label": a.label,
        "macd_v": a.macd_v,
        "signal": a.signal,
        "histogram": a.histogram,
        "price": a.price,
        "candle_time": a.timestamp,
        "triggered_at": at if at.tzinfo else at.replace(tzinfo=UTC),
        "payload": orjson.loads(raw),
    }


def archive_alerts(redis: Any, engine: sa.Engine, last_id: str | None = None, batch: int = 1000,
                   max_entries: int | None = None) -> tuple[str | None, int]:
    """Copy alerts newer than stream id `last_id` (None = from the start) from `stream:alerts` into
    `alert_history`. Returns (new cursor, rows inserted). `redis` is a synchronous redis-py client.

    Each batch commits before the cursor moves past it, so a crash re-reads at most one batch and
    the unique alert_id turns the re-read into no-ops: no loss, no duplicates. Malformed entries
    are logged and skipped (the cursor moves past them) rather than blocking the archive forever.
    """
    if batch < 1:
        raise ValueError("batch must be >= 1")
    stmt = _insert_ignoring_duplicates(engine)
    cursor = last_id
    inserted = 0
    seen = 0
    while max_entries is None or seen < max_entries:
        start = "-" if cursor in (None, "", "0", "0-0") else f"({cursor}"
        count = batch if max_entries is None else min(batch, max_entries - seen)
        entries = redis.xrange(keys.ALERTS_STREAM, min=start, max="+", count=count)
        if not entries:
            break
        rows = [r for r in (_row(as_str(i), f) for i, f in entries) if r is not None]
        if rows:
            with engine.begin() as conn:
                # drop alerts of exchanges the database does not know (foreign key) instead of failing
                known = {int(i) for (i,) in conn.execute(sa.text("SELECT id FROM exchanges"))}
                unknown = [r for r in rows if r["exchange_id"] not in known]
                for r in unknown:
                    log.warning("alert %s names unknown exchange id %s; skipped", r["alert_id"], r["exchange_id"])
                rows = [r for r in rows if r["exchange_id"] in known]
                if rows:
                    # rowcount of an executemany with ON CONFLICT DO NOTHING differs by driver:
                    # count what was already there instead
                    ids = list({r["alert_id"] for r in rows})
                    before = conn.execute(
                        sa.select(sa.func.count()).select_from(alert_history).where(alert_history.c.alert_id.in_(ids))
                    ).scalar_one()
                    conn.execute(stmt, rows)
                    inserted += len(ids) - int(before)
        cursor = as_str(entries[-1][0])
        seen += len(entries)
        if len(entries) < count:
            break
    return cursor, inserted

