"""`candle_audit` over what a real worker stored from the simulator: warm-up, live 5m closes and
(Coinbase) the 15m..1d bars aggregated from them, all compared with the exchange's REST candles."""

import dagster as dg
import orjson
import pytest

from livermore_pipelines.assets.audit import CHECK, candle_audit
from livermore_pipelines.jobs import start_streaming, stop_streaming
from streaming import keys
from streaming.models import Candle
from streaming.store import decode_candle, encode_candle
from tests.e2e.platform import publish_universe, sim_platform
from tests.servers import wait_for

pytestmark = pytest.mark.slow

SPEED = 120  # a 5m bar closes every 2.5 s, a 15m bar every 7.5 s


@pytest.fixture
def platform(sqlite_url, redis_url, tmp_path, monkeypatch):
    with sim_platform(sqlite_url, redis_url, tmp_path / "home", monkeypatch, symbols=2, speed=SPEED) as platform:
        yield platform


@pytest.mark.parametrize(("exchange", "exchange_id"), [("coinbase", 1), ("binance", 2)])
def test_audit_of_a_streamed_store_passes(exchange, exchange_id, platform, redis_client):
    sim, resources, instance = platform
    publish_universe(exchange, resources, instance)
    started = start_streaming.execute_in_process(
        run_config={"ops": {"start_exchange_streaming": {"config": {"exchange": exchange, "timeout_s": 120.0}}}},
        resources=resources, instance=instance)
    assert started.success
    symbol = sim.symbols(exchange)[0]
    marker = keys.closed_marker(exchange_id, symbol, "15m")
    first = int(redis_client.get(marker))
    # two live 15m closes (built from live 5m closes on Coinbase)
    wait_for(lambda: int(redis_client.get(marker)) >= first + 2 * 900_000, timeout=90, interval=0.5,
             message="two live 15m closes")
    # stopped or not makes no difference to the audit (it compares through the newest stored
    # bar); stopped, the test leaves no worker writing behind it
    stop_streaming.execute_in_process(
        run_config={"ops": {"stop_exchange_streaming": {"config": {"exchange": exchange}}}},
        resources=resources, instance=instance)

    result = dg.materialize([candle_audit], resources=resources, instance=instance, partition_key=exchange,
                            run_config={"ops": {"candle_audit": {"config": {"bars": 300, "symbols_per_run": 10}}}})
    [check] = result.get_asset_check_evaluations()
    meta = {k: v.value for k, v in check.metadata.items()}
    rows = [r.data for r in meta["differing_bars"].records] if "differing_bars" in meta else []
    assert check.check_name == CHECK and check.passed, (check.description, rows[:10])
    assert meta["streams_audited"] == 2 * 5 and meta["bars_compared"] >= 2 * 5 * 250


def test_repair_while_the_worker_streams_publishes_no_second_close(platform, redis_client):
    """A stored 5m bar corrupted behind a running worker: the audit reports and repairs it, and the
    close channel carries only the worker's own closes, each bar once, none of them the repaired one."""
    sim, resources, instance = platform
    publish_universe("coinbase", resources, instance)
    assert start_streaming.execute_in_process(
        run_config={"ops": {"start_exchange_streaming": {"config": {"exchange": "coinbase", "timeout_s": 120.0}}}},
        resources=resources, instance=instance).success
    symbol = sim.symbols("coinbase")[0]
    marker = keys.closed_marker(1, symbol, "5m")
    first = int(redis_client.get(marker))
    wait_for(lambda: int(redis_client.get(marker)) > first, timeout=60, interval=0.2, message="a live 5m close")
    pubsub = redis_client.pubsub()
    pubsub.psubscribe(keys.candle_close_pattern(1))
    assert pubsub.get_message(timeout=2)["type"] == "psubscribe"

    key = keys.candles(1, symbol, "5m")
    victim_ts = int(redis_client.get(marker)) - 3 * 300_000
    [raw] = redis_client.zrangebyscore(key, victim_ts, victim_ts)
    good = decode_candle(raw)
    bad = Candle(good.timestamp, good.open, good.high, good.low, good.low, good.volume * 2 + 1)
    redis_client.zremrangebyscore(key, victim_ts, victim_ts)
    redis_client.zadd(key, {encode_candle(bad): victim_ts})

    config = {"symbols": [symbol], "timeframes": ["5m"], "bars": 50}
    result = dg.materialize([candle_audit], resources=resources, instance=instance, partition_key="coinbase",
                            run_config={"ops": {"candle_audit": {"config": config}}})
    [check] = result.get_asset_check_evaluations()
    meta = {k: v.value for k, v in check.metadata.items()}
    assert not check.passed and meta["differences"] == meta["repaired"] == 1
    [row] = [r.data for r in meta["differing_bars"].records]
    assert (row["kind"], row["fields"], row["repaired"]) == ("mismatch", "close,volume", True)
    [raw] = redis_client.zrangebyscore(key, victim_ts, victim_ts)
    assert decode_candle(raw) == good

    # the worker keeps closing: three more 5m closes of the symbol, each published once
    closed: list[tuple[str, str, int]] = []
    now = int(redis_client.get(marker))
    wait_for(lambda: int(redis_client.get(marker)) >= now + 3 * 300_000, timeout=60, interval=0.2,
             message="three more live 5m closes")
    while (m := pubsub.get_message(timeout=1.0)) is not None:
        if m["type"] == "pmessage":
            event = orjson.loads(m["data"])
            closed.append((event["symbol"], event["timeframe"], event["timestamp"]))
    pubsub.close()
    assert len(closed) == len(set(closed)) and all(ts > victim_ts for _, _, ts in closed)
    assert {ts for s, tf, ts in closed if (s, tf) == (symbol, "5m")} >= {now + i * 300_000 for i in (1, 2, 3)}
    # and the audit now finds the store right
    again = dg.materialize([candle_audit], resources=resources, instance=instance, partition_key="coinbase",
                           run_config={"ops": {"candle_audit": {"config": config}}})
    assert again.get_asset_check_evaluations()[0].passed
