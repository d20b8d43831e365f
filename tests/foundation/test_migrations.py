import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from streaming.db import migrate
from streaming.db.engine import make_engine
from streaming.db.schema import exchanges, metadata
from streaming.db.seed import EXCHANGES

TABLES = {"exchanges", "users", "user_exchanges", "exchange_connection_status", "exchange_symbols", "positions",
          "alert_history", "notify_destinations", "notify_subscriptions"}


def _snapshot(engine: sa.Engine) -> dict:
    """Tables, columns (name, nullability), unique constraints and foreign keys, comparable across dialects."""
    insp = sa.inspect(engine)
    out = {}
    for table in sorted(set(insp.get_table_names()) - {"alembic_version"}):
        out[table] = {
            "columns": sorted((c["name"], c["nullable"]) for c in insp.get_columns(table)),
            "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
            "fks": sorted((tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(table)),
            "indexes": sorted(tuple(i["column_names"]) for i in insp.get_indexes(table) if not i.get("unique")),
        }
    return out


def test_upgrade_downgrade_upgrade(database_url):
    assert migrate.upgrade(database_url) == 3
    engine = make_engine(database_url)
    try:
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
        assert migrate.current_revision(engine) == migrate.head_revision() == "0002"
        migrate.downgrade(database_url)
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        assert migrate.upgrade(database_url) == 3
        assert set(sa.inspect(engine).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(database_url):
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_seed_is_idempotent(database_url):
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            before = [dict(r._mapping) for r in conn.execute(sa.select(exchanges).order_by(exchanges.c.id))]
        assert migrate.upgrade(database_url) == 0
        with engine.connect() as conn:
            after = [dict(r._mapping) for r in conn.execute(sa.select(exchanges).order_by(exchanges.c.id))]
        assert before == after
        assert [(r["id"], r["name"], r["display_name"]) for r in after] == [
            (1, "coinbase", "Coinbase Advanced Trade"), (2, "binance", "Binance"), (3, "binance_us", "Binance.US")]
        coinbase = after[0]
        assert coinbase["ws_timeframes"] == ["5m"]
        assert coinbase["fee_schedule"] == {"maker": 0.006, "taker": 0.012}
        assert coinbase["api_limits"]["ws_connections_per_second"] == 8
        assert after[1]["api_limits"]["rest_weight_per_minute"] == 6000
        assert after[2]["api_limits"]["rest_weight_per_minute"] == 1200
        assert after[1]["geo_restrictions"] == {"blocked_countries": ["US"]}
        assert after[2]["ws_url"] == "wss://stream.binance.us:9443"
    finally:
        engine.dispose()


def test_seed_keeps_operator_changes(database_url):
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(exchanges.update().where(exchanges.c.name == "binance").values(is_active=False))
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            assert conn.execute(sa.select(exchanges.c.is_active).where(exchanges.c.name == "binance")).scalar_one() \
                is False
    finally:
        engine.dispose()


def test_constraints_are_enforced(database_url):
    from streaming.db.schema import exchange_connection_status, user_exchanges, users

    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        for bad in (
            exchanges.insert().values(**{**EXCHANGES[0], "id": 99}),  # duplicate name
            user_exchanges.insert().values(user_id=12345, exchange_id=1, api_key_env="K", api_secret_env="S"),  # FK
            exchange_connection_status.update().values(connection_state="bogus"),  # check constraint
        ):
            with engine.begin() as conn, _raises_integrity():
                conn.execute(bad)
        with engine.begin() as conn:
            uid = conn.execute(users.insert().values(external_id="u1", display_name="U")).inserted_primary_key[0]
            conn.execute(user_exchanges.insert().values(user_id=uid, exchange_id=1, api_key_env="K",
                                                        api_secret_env="S"))
        with engine.begin() as conn, _raises_integrity():
            conn.execute(user_exchanges.insert().values(user_id=uid, exchange_id=1, api_key_env="K2",
                                                        api_secret_env="S2"))
    finally:
        engine.dispose()


def test_same_schema_on_sqlite_and_postgresql(sqlite_url, postgres_url):
    snapshots = []
    for url in (sqlite_url, postgres_url):
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            snapshots.append(_snapshot(engine))
        finally:
            engine.dispose()
    assert snapshots[0] == snapshots[1]
    assert set(snapshots[0]) == TABLES


class _raises_integrity:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        assert exc_type is not None, "expected an IntegrityError, nothing was raised"
        assert issubclass(exc_type, sa.exc.IntegrityError), f"expected IntegrityError, got {exc!r}"
        return True
