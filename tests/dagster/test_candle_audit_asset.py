"""`candle_audit` against the local exchange simulator (pinned clock), real Redis, and the
Livermore database and the Dagster instance storage both on SQLite and on PostgreSQL.

The store is filled the way the worker's warm-up fills it (the exchange's REST candles, through
CandleStore), with the closed marker on the newest bar; then bars are corrupted by hand."""

import asyncio
from datetime import UTC, datetime

import dagster as dg
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from livermore_pipelines.assets.audit import CHECK, candle_audit
from livermore_pipelines.audit_schedule import audit_candles, candle_audit_schedule
from livermore_pipelines.resources import ExchangeClientsResource
from livermore_pipelines.store import write_universe
from livermore_pipelines.universe_builder import UniverseEntry, universe_document
from streaming import keys
from streaming.db.engine import make_engine
from streaming.db.queries import get_exchange
from streaming.db.schema import exchanges
from streaming.models import Candle
from streaming.sim.testing import running_simulator
from streaming.store import CandleStore, decode_candle, encode_candle
from streaming.timeframes import TIMEFRAMES, timeframe_ms
from tests.helpers.sim import sim_clock_env, sim_config
from tests.servers import free_port

EXCHANGE_IDS = {"coinbase": 1, "binance": 2}
BARS = 30
USER = 7


@pytest.fixture(scope="module")
def sim():
    with running_simulator(sim_config(symbols=2, seed=11)) as handle:
        yield handle


@pytest.fixture
def sim_env(sim, monkeypatch):
    for name, urls in sim.urls.items():
        monkeypatch.setenv(f"LIVERMORE_{name.upper()}_REST_URL", urls.rest_url)
        monkeypatch.setenv(f"LIVERMORE_{name.upper()}_WS_URL", urls.ws_url)
    for name, value in sim_clock_env(sim).items():
        monkeypatch.setenv(name, value)
    return sim


def _symbols(sim, exchange: str) -> list[str]:
    return [s for s in sim.symbols(exchange) if s.startswith("SIM")][:2]


def _row(db_url: str, exchange: str) -> dict:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return get_exchange(conn, exchange)
    finally:
        engine.dispose()


async def _exchange_bars(row: dict, symbols: list[str]) -> dict[tuple[str, str], list[Candle]]:
    """The newest BARS closed bars of each stream, from the exchange's REST (as a warm-up gets them)."""
    out = {}
    async with ExchangeClientsResource().adapter(row) as adapter:
        for symbol in symbols:
            for tf in TIMEFRAMES:
                step = timeframe_ms(tf)
                end = adapter.now_ms() - adapter.now_ms() % step
                out[(symbol, tf)] = (await adapter.fetch_candles(symbol, tf, end - (BARS + 5) * step, end))[-BARS:]
    return out


async def _fill(redis_url: str, exchange_id: int, pools: dict[str, tuple[int, ...]],
                bars: dict[tuple[str, str], list[Candle]]) -> None:
    r = aioredis.Redis.from_url(redis_url)
    try:
        store = CandleStore(r)
        for (symbol, tf), candles in bars.items():
            assert len(candles) == BARS
            await store.write_many(exchange_id, symbol, tf, candles, pools[symbol])
            await r.set(keys.closed_marker(exchange_id, symbol, tf), candles[-1].timestamp)
            await r.set(keys.indicator(exchange_id, symbol, tf), f'{{"timestamp": {candles[-1].timestamp}}}')
    finally:
        await r.aclose()


@pytest.fixture(params=["coinbase", "binance"])
def stored(request, sim_env, db_url, redis_url, redis_client):
    """An exchange whose universe has one shared and one user-pool symbol, every timeframe stored."""
    exchange = request.param
    ex_id = EXCHANGE_IDS[exchange]
    shared, held = _symbols(sim_env, exchange)
    pools = {shared: (), held: (USER,)}
    write_universe(redis_client, ex_id, universe_document(ex_id, exchange, "2026-08-09T21:00:00Z", [
        UniverseEntry(shared), UniverseEntry(held, tier=2, pool="user", users=(USER,))]))
    bars = asyncio.run(_exchange_bars(_row(db_url, exchange), [shared, held]))
    asyncio.run(_fill(redis_url, ex_id, pools, bars))
    return exchange, ex_id, shared, held, bars


def _run(resources, instance, exchange, **config):
    config.setdefault("bars", BARS)
    return dg.materialize([candle_audit], resources=resources, instance=instance, partition_key=exchange,
                          run_config={"ops": {"candle_audit": {"config": config}}})


def _check(result) -> dg.AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK
    return evaluation


def _stored_bar(redis_client, key: str, ts: int) -> Candle:
    [raw] = redis_client.zrangebyscore(key, ts, ts)
    return decode_candle(raw)


def test_clean_store_passes_with_the_counts(stored, resources, stored_instance, redis_client):
    exchange, ex_id, shared, held, bars = stored
    before = {k: redis_client.zrange(k, 0, -1) for k in redis_client.keys("*candles:*")}
    assert len(before) == 2 * len(TIMEFRAMES)
    result = _run(resources, stored_instance, exchange, symbols_per_run=10)
    check = _check(result)
    assert check.passed
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["streams_audited"] == 2 * len(TIMEFRAMES)
    assert meta["bars_compared"] == 2 * len(TIMEFRAMES) * BARS
    assert meta["differences"] == meta["repaired"] == meta["streams_failed"] == 0
    assert {k: redis_client.zrange(k, 0, -1) for k in redis_client.keys("*candles:*")} == before
    assert redis_client.exists(keys.candles(ex_id, shared, "5m"), keys.user_candles(USER, ex_id, held, "1d")) == 2
    assert len(bars) == 2 * len(TIMEFRAMES)
    # the instance storage kept the evaluation
    record = stored_instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("candle_audit"), CHECK)])
    assert record[dg.AssetCheckKey(dg.AssetKey("candle_audit"), CHECK)].status.value == "SUCCEEDED"


def test_corrupted_and_missing_bars_are_reported_and_repaired_without_a_close_event(
        stored, resources, stored_instance, redis_client):
    exchange, ex_id, shared, held, bars = stored
    # a shared 15m bar with a wrong close and volume; a hole in the user-pool symbol's 5m bars
    good = bars[(shared, "15m")][-3]
    bad = Candle(good.timestamp, good.open, good.high, good.low, good.low, good.volume * 2 + 1)
    key = keys.candles(ex_id, shared, "15m")
    redis_client.zremrangebyscore(key, good.timestamp, good.timestamp)
    redis_client.zadd(key, {encode_candle(bad): good.timestamp})
    hole = bars[(held, "5m")][-5]
    user_key = keys.user_candles(USER, ex_id, held, "5m")
    redis_client.zremrangebyscore(user_key, hole.timestamp, hole.timestamp)
    markers = {k: redis_client.get(k) for k in redis_client.keys("closed:*")}
    indicators = {k: redis_client.get(k) for k in redis_client.keys("indicator:*")}
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(keys.candle_close_pattern(ex_id), keys.alerts_channel(ex_id))
    assert [pubsub.get_message(timeout=1)["type"] for _ in range(2)] == ["psubscribe"] * 2

    check = _check(_run(resources, stored_instance, exchange, symbols_per_run=10))

    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in check.metadata.items()}
    assert (meta["differences"], meta["mismatched"], meta["missing"], meta["repaired"]) == (2, 1, 1, 2)
    rows = sorted((r.data for r in meta["differing_bars"].records), key=lambda d: d["timeframe"])
    assert [(d["symbol"], d["timeframe"], d["kind"], d["fields"], d["repaired"]) for d in rows] == [
        (shared, "15m", "mismatch", "close,volume", True), (held, "5m", "missing", "", True)]
    assert rows[0]["stored"].split()[3] == repr(bad.close) and rows[0]["exchange"].split()[3] == repr(good.close)
    assert rows[1]["stored"] == "" and rows[1]["exchange"].split()[0] == repr(hole.open)
    # the store holds the exchange's bars again
    assert _stored_bar(redis_client, key, good.timestamp) == good
    assert _stored_bar(redis_client, user_key, hole.timestamp) == hole
    assert redis_client.zcard(key) == redis_client.zcard(user_key) == BARS
    assert not redis_client.exists(keys.candles(ex_id, held, "5m"))  # a user-pool symbol stays user-scoped
    # and nothing was published or moved: no close event, no alert, markers and indicators as they were
    assert pubsub.get_message(timeout=1.0) is None
    pubsub.close()
    assert {k: redis_client.get(k) for k in redis_client.keys("closed:*")} == markers
    assert {k: redis_client.get(k) for k in redis_client.keys("indicator:*")} == indicators
    assert redis_client.xlen(keys.ALERTS_STREAM) == 0

    # the next run finds nothing left to repair
    assert _check(_run(resources, stored_instance, exchange, symbols_per_run=10)).passed


def test_report_only_leaves_the_store_alone(stored, resources, instance, redis_client):
    exchange, ex_id, shared, _, bars = stored
    good = bars[(shared, "1d")][-1]
    bad = Candle(good.timestamp, good.open, good.high * 1.01, good.low, good.close, good.volume)
    key = keys.candles(ex_id, shared, "1d")
    redis_client.zremrangebyscore(key, good.timestamp, good.timestamp)
    redis_client.zadd(key, {encode_candle(bad): good.timestamp})
    check = _check(_run(resources, instance, exchange, symbols=[shared], timeframes=["1d", "4h"], repair=False))
    meta = {k: v.value for k, v in check.metadata.items()}
    assert not check.passed and meta["streams_audited"] == 2 and meta["repaired"] == 0
    assert [(r.data["fields"], r.data["repaired"]) for r in meta["differing_bars"].records] == [("high", False)]
    assert _stored_bar(redis_client, key, good.timestamp) == bad


@pytest.fixture
def coinbase(sim_env, db_url, redis_url, redis_client):
    """Coinbase only (the cases below do not depend on the exchange), same store as `stored`."""
    shared, held = _symbols(sim_env, "coinbase")
    write_universe(redis_client, 1, universe_document(1, "coinbase", "2026-08-09T21:00:00Z", [
        UniverseEntry(shared), UniverseEntry(held, tier=2, pool="user", users=(USER,))]))
    bars = asyncio.run(_exchange_bars(_row(db_url, "coinbase"), [shared, held]))
    asyncio.run(_fill(redis_url, 1, {shared: (), held: (USER,)}, bars))
    return shared, held, bars


def test_symbols_and_streams_without_exchange_history_are_skipped(coinbase, resources, instance, redis_url):
    shared, _, bars = coinbase
    # a symbol the exchange does not list, with bars stored anyway (a delisted product)
    asyncio.run(_fill(redis_url, 1, {"GONE-USD": ()}, {("GONE-USD", "1h"): bars[(shared, "1h")]}))
    result = _run(resources, instance, "coinbase", symbols=["GONE-USD", shared, "NEVER-USD"])
    check = _check(result)
    assert check.passed, check.description
    meta = {k: v.value for k, v in result.asset_materializations_for_node("candle_audit")[0].metadata.items()}
    assert meta["streams_audited"] == len(TIMEFRAMES) and meta["bars_compared"] == len(TIMEFRAMES) * BARS
    skipped = meta["skipped"]
    assert "unknown to the exchange" in skipped["GONE-USD *"]
    # nothing stored: no REST request is made for it, so the exchange is never asked
    assert {k for k in skipped if k.startswith("NEVER-USD")} == {f"NEVER-USD {tf}" for tf in TIMEFRAMES}
    assert set(skipped["NEVER-USD 5m"].split()) == {"nothing", "stored"}


def test_without_a_universe_the_stored_shared_symbols_are_audited(coinbase, resources, instance, redis_client):
    shared, _, _ = coinbase
    redis_client.delete(keys.universe(1))
    meta = {k: v.value for k, v in _check(_run(resources, instance, "coinbase", symbols_per_run=10)).metadata.items()}
    # the user-pool symbol is not found without the universe that names its holders
    assert meta["streams_audited"] == len(TIMEFRAMES) and meta["differences"] == 0
    assert redis_client.exists(keys.candles(1, shared, "5m"))


def test_an_unreachable_exchange_warns_and_changes_nothing(coinbase, resources, instance, redis_client, monkeypatch,
                                                           quick_http_retries):
    monkeypatch.setenv("LIVERMORE_COINBASE_REST_URL", f"http://127.0.0.1:{free_port()}")
    before = {k: redis_client.zrange(k, 0, -1) for k in redis_client.keys("*candles:*")}
    result = _run(resources, instance, "coinbase", symbols_per_run=10)
    check = _check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["streams_failed"] == 2 * len(TIMEFRAMES) and meta["streams_audited"] == 0
    assert all("127.0.0.1" in error or "refused" in error.lower() for error in meta["failed"].values())
    assert {k: redis_client.zrange(k, 0, -1) for k in redis_client.keys("*candles:*")} == before


@pytest.mark.parametrize(("config", "says"), [
    ({"bars": 0}, "bars=0 is invalid"),
    ({"bars": 1001}, "bars=1001 is invalid"),
    ({"symbols_per_run": 0}, "symbols_per_run=0 is invalid"),
    ({"timeframes": ["2h"]}, "timeframes ['2h'] invalid"),
    ({"timeframes": []}, "timeframes [] invalid"),
    ({"symbols": ["BAD:SYM"]}, "symbol 'BAD:SYM' rejected"),
    ({"price_rel_tol": 2.0}, "price_rel must be a relative tolerance"),
    ({"volume_rel_tol": -1.0}, "volume_rel must be a relative tolerance"),
])
def test_bad_config_fails_with_the_setting_before_any_request(config, says, resources, instance, redis_client):
    # no simulator, no exchanges row needed: the config is checked first
    result = dg.materialize([candle_audit], resources=resources, instance=instance, partition_key="coinbase",
                            run_config={"ops": {"candle_audit": {"config": config}}}, raise_on_error=False)
    assert not result.success
    description = result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    assert says in description and description.startswith("candle_audit config")


def test_schedule_requests_one_audit_per_active_exchange(resources, engine, instance):
    with engine.begin() as conn:
        conn.execute(sa.update(exchanges).where(exchanges.c.name == "binance_us").values(is_active=False))
    at = datetime(2026, 8, 9, 21, 30, tzinfo=UTC)
    defs = dg.Definitions(assets=[candle_audit], jobs=[audit_candles], schedules=[candle_audit_schedule],
                          resources=resources)
    ctx = dg.build_schedule_context(instance=instance, resources=resources, scheduled_execution_time=at,
                                   repository_def=defs.get_repository_def())
    requests = list(candle_audit_schedule.evaluate_tick(ctx).run_requests or [])
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("coinbase", f"audit:coinbase:{at.isoformat()}"), ("binance", f"audit:binance:{at.isoformat()}")]
    assert candle_audit_schedule.cron_schedule == "30 * * * *"
    assert candle_audit_schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_bars_the_exchange_has_not_closed_yet_are_not_judged(coinbase, resources, instance, redis_url, sim_env):
    shared, _, bars = coinbase
    # bars the exchange's clock does not count as closed (the store's clock ran ahead of it)
    ahead = sim_env.now_ms() - sim_env.now_ms() % 300_000 + 2 * 300_000
    early = Candle(ahead, *([bars[(shared, "5m")][-1].close] * 4), 1.0)
    asyncio.run(_fill(redis_url, 1, {shared: (), "EARLY-USD": ()},
                      {(shared, "5m"): [*bars[(shared, "5m")][1:], early], ("EARLY-USD", "5m"): [early] * BARS}))
    result = _run(resources, instance, "coinbase", symbols=[shared, "EARLY-USD"], timeframes=["5m"])
    check = _check(result)
    assert check.passed, check.description
    meta = {k: v.value for k, v in result.asset_materializations_for_node("candle_audit")[0].metadata.items()}
    assert meta["streams_audited"] == 1 and meta["bars_compared"] == BARS - 1
    assert meta["skipped"] == {"EARLY-USD 5m": "no stored bar is closed yet by the exchange's clock"}
