"""archive_alerts: the durable alert stream into alert_history, no loss, no duplicates, both databases."""

from __future__ import annotations

import sqlalchemy as sa

from streaming import keys
from streaming.alerts.publish import alert_event, archive_alerts, encode_alert
from streaming.alerts.rules import AlertSignal
from streaming.db.engine import make_engine
from streaming.db.migrate import upgrade
from streaming.db.schema import alert_history


def add_alert(client, ts: int, label: str = "level_-150", exchange_id: int = 1) -> str:
    sig = AlertSignal("level", label, -150, -151.5, -140.0, -11.5)
    ev = alert_event(exchange_id, "coinbase", "BTC-USD", "5m", ts, 42000.5, sig)
    client.xadd(keys.ALERTS_STREAM, {"json": encode_alert(ev)})
    return ev.id


def test_archive_is_idempotent_and_resumable(database_url, redis_client):
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        ids = [add_alert(redis_client, 1_700_000_000_000 + i * 300_000) for i in range(5)]
        redis_client.xadd(keys.ALERTS_STREAM, {"json": "{not json"})  # skipped, never blocks the cursor
        redis_client.xadd(keys.ALERTS_STREAM, {"other": "x"})
        cursor, n = archive_alerts(redis_client, engine, None, batch=2)
        assert n == 5
        # the same alerts again (e.g. a replayed stream) and a resumed cursor: nothing new
        assert archive_alerts(redis_client, engine, None) == (cursor, 0)
        assert archive_alerts(redis_client, engine, cursor) == (cursor, 0)
        more = [add_alert(redis_client, 1_700_000_000_000, "level_-200"), add_alert(redis_client, 1, "x", 999)]
        cursor2, n2 = archive_alerts(redis_client, engine, cursor)
        assert n2 == 1 and cursor2 != cursor  # the unknown exchange 999 is skipped, not a crash
        with engine.connect() as conn:
            rows = conn.execute(sa.select(alert_history).order_by(alert_history.c.id)).mappings().all()
        assert [r["alert_id"] for r in rows] == ids + more[:1]
        r0 = rows[0]
        assert (r0["exchange_id"], r0["symbol"], r0["timeframe"], r0["alert_type"], r0["label"]) == \
            (1, "BTC-USD", "5m", "level", "level_-150")
        assert r0["candle_time"] == 1_700_000_000_000 and r0["price"] == 42000.5 and r0["macd_v"] == -151.5
        assert r0["payload"]["id"] == ids[0] and r0["triggered_at"] is not None
    finally:
        engine.dispose()
