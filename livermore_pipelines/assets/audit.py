"""`candle_audit`: a sample of stored closed candles against the exchange's REST candles, repaired.

Per exchange partition: K symbols (the universe's, a different K each hour), every timeframe the
exchange serves over REST, the newest N stored bars of each. A bar that differs, or a hole among
them, is replaced by the exchange's own bar through streaming.store.repair: no close event, no
alert, the closed marker untouched. The check `candles_match_exchange` is an ERROR listing the
differing bars, or passes with the counts.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from redis.asyncio import Redis as AsyncRedis

from livermore_pipelines.assets.common import exchange_row
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.candle_audit import (
    DEFAULT_PRICE_REL_TOL,
    DEFAULT_VOLUME_REL_TOL,
    AuditInputError,
    BarDifference,
    Tolerance,
    audit_window,
    compare_candles,
    sample_symbols,
)
from livermore_pipelines.partitions import exchange_partitions
from livermore_pipelines.resources import DatabaseResource, ExchangeClientsResource, RedisResource, run_async
from streaming import keys
from streaming.adapters.base import AdapterError, UnknownSymbolError
from streaming.adapters.factory import adapter_class
from streaming.contracts.universe import UniverseError, decode_entries_leniently
from streaming.models import Candle
from streaming.redis_clients import async_client
from streaming.settings import resolve_redis_url
from streaming.store.candles import DEFAULT_MAX_CANDLES, CandleStore
from streaming.store.repair import repair_candles
from streaming.timeframes import TIMEFRAMES, bucket_start, timeframe_ms

CHECK = "candles_match_exchange"
MAX_LISTED = 200  # differing bars listed in the metadata (all are counted)
DIFF_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("symbol", "string"), dg.TableColumn("timeframe", "string"),
    dg.TableColumn("open_time", "string"), dg.TableColumn("kind", "string"), dg.TableColumn("fields", "string"),
    dg.TableColumn("stored", "string"), dg.TableColumn("exchange", "string"), dg.TableColumn("repaired", "bool"),
])

Pools = dict[str, tuple[int, ...]]


class CandleAuditConfig(dg.Config):
    bars: int = 100  # the newest N stored bars of each stream
    symbols_per_run: int = 5  # K; a different K of the universe each hour
    symbols: list[str] = []  # audit exactly these instead of a sample
    timeframes: list[str] = list(TIMEFRAMES)
    repair: bool = True  # False: report only
    price_rel_tol: float = DEFAULT_PRICE_REL_TOL
    volume_rel_tol: float = DEFAULT_VOLUME_REL_TOL


@dataclass
class AuditReport:
    streams: int = 0
    bars: int = 0  # stored bars compared
    repaired: int = 0
    differences: list[tuple[str, str, BarDifference, bool]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "SYM tf" (or "* tf") -> why
    failed: dict[str, str] = field(default_factory=dict)  # "SYM tf" -> the REST error

    def count(self, kind: str) -> int:
        return sum(1 for _, _, d, _ in self.differences if d.kind == kind)


def _checked(config: CandleAuditConfig) -> Tolerance:
    """The tolerance; dg.Failure naming the setting for anything unusable (before any I/O)."""
    if not 1 <= config.bars <= DEFAULT_MAX_CANDLES:
        raise dg.Failure(description=f"candle_audit config: bars={config.bars} is invalid; set bars to a whole "
                                     f"number from 1 to {DEFAULT_MAX_CANDLES}")
    if config.symbols_per_run < 1:
        raise dg.Failure(description=f"candle_audit config: symbols_per_run={config.symbols_per_run} is invalid; "
                                     "set it to 1 or more")
    unknown = [tf for tf in config.timeframes if tf not in TIMEFRAMES]
    if unknown or not config.timeframes:
        raise dg.Failure(description=f"candle_audit config: timeframes {unknown or '[]'} invalid; use some of "
                                     f"{', '.join(TIMEFRAMES)}")
    for symbol in config.symbols:
        try:
            keys.validate_symbol(symbol)
        except keys.InvalidSymbol as exc:
            raise dg.Failure(description=f"candle_audit config: {exc}") from None
    try:
        return Tolerance(config.price_rel_tol, config.volume_rel_tol)
    except AuditInputError as exc:
        raise dg.Failure(description=f"candle_audit config: {exc}") from None


async def _pools(r: AsyncRedis, exchange_id: int, config: CandleAuditConfig, log: logging.Logger) -> Pools:
    """The symbols to choose from, with the users whose keys hold a Tier-2-only symbol: the
    universe, else (a worker started with explicit symbols) every symbol stored under the shared
    keys; `config.symbols` when given."""
    universe: Pools = {}
    raw = await r.get(keys.universe(exchange_id))
    if raw:
        try:
            entries, _ = decode_entries_leniently(raw)
            universe = {e.symbol: e.users if e.pool == "user" else () for e in entries}
        except UniverseError as exc:
            log.warning("universe of exchange %d unusable (%s): auditing the stored symbols", exchange_id, exc)
    if config.symbols:
        return {s: universe.get(s, ()) for s in config.symbols}
    if universe:
        return universe
    found: set[str] = set()
    async for key in r.scan_iter(match=keys.candles(exchange_id, "*", TIMEFRAMES[0]), count=1000):
        found.add((key.decode() if isinstance(key, bytes) else key).split(":")[2])
    return dict.fromkeys(sorted(found), ())


async def _audit_stream(adapter: Any, store: CandleStore, r: AsyncRedis, exchange_id: int, symbol: str,
                        users: tuple[int, ...], tf: str, config: CandleAuditConfig, tolerance: Tolerance,
                        report: AuditReport) -> None:
    stream = f"{symbol} {tf}"
    stored = await store.read(exchange_id, symbol, tf, config.bars, user_ids=users)
    window = audit_window(stored, timeframe_ms(tf))
    if window is None:
        report.skipped[stream] = "nothing stored"
        return
    # the exchange's clock may not count our newest bar as closed yet: it is not the audit's
    end = min(window[1], bucket_start(adapter.now_ms(), tf))
    if end <= window[0]:
        report.skipped[stream] = "no stored bar is closed yet by the exchange's clock"
        return
    theirs: list[Candle] = await adapter.fetch_candles(symbol, tf, window[0], end)
    if not theirs:
        report.skipped[stream] = "the exchange serves no candles for these bars"
        return
    diffs = compare_candles(stored, theirs, window[0], end, tolerance)
    report.streams += 1
    report.bars += sum(1 for c in stored if window[0] <= c.timestamp < end)
    fixes = [d.repair for d in diffs if d.repair is not None]
    written = set(await repair_candles(r, exchange_id, symbol, tf, fixes, users)) if config.repair else set()
    report.repaired += len(written)
    report.differences += [(symbol, tf, d, d.timestamp in written) for d in diffs]


async def audit_exchange(row: dict[str, Any], redis_url: str, clients: ExchangeClientsResource,
                         config: CandleAuditConfig, tolerance: Tolerance, rotation: int,
                         log: logging.Logger) -> AuditReport:
    exchange_id, name = int(row["id"]), str(row["name"])
    report = AuditReport()
    served = adapter_class(name).rest_timeframes
    timeframes = [tf for tf in dict.fromkeys(config.timeframes) if tf in served]
    for tf in dict.fromkeys(config.timeframes):
        if tf not in served:
            report.skipped[f"* {tf}"] = f"{name} serves no {tf} candles over REST"
    r = async_client(redis_url, decode=False)
    try:
        pools = await _pools(r, exchange_id, config, log)
        chosen = list(config.symbols) or sample_symbols(list(pools), config.symbols_per_run, rotation)
        store = CandleStore(r)
        async with clients.adapter(row) as adapter:
            for symbol in chosen:
                for tf in timeframes:
                    try:
                        await _audit_stream(adapter, store, r, exchange_id, symbol, pools.get(symbol, ()), tf,
                                            config, tolerance, report)
                    except UnknownSymbolError as exc:
                        report.skipped[f"{symbol} *"] = f"unknown to the exchange: {exc}"
                        break
                    except (AdapterError, AuditInputError, OSError, TimeoutError) as exc:
                        report.failed[f"{symbol} {tf}"] = f"{type(exc).__name__}: {exc}"[:300]
                        log.warning("%s: audit of %s %s failed: %s", name, symbol, tf, exc)
    finally:
        await r.aclose()
    return report


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _ohlcv(c: Candle | None) -> str:
    return "" if c is None else f"{c.open!r} {c.high!r} {c.low!r} {c.close!r} {c.volume!r}"


def _rows(differences: Sequence[tuple[str, str, BarDifference, bool]]) -> list[dg.TableRecord]:
    return [dg.TableRecord({
        "symbol": symbol, "timeframe": tf, "open_time": _iso(d.timestamp), "kind": d.kind,
        "fields": ",".join(d.fields), "stored": _ohlcv(d.stored), "exchange": _ohlcv(d.exchange),
        "repaired": repaired,
    }) for symbol, tf, d, repaired in differences[:MAX_LISTED]]


def _counts(report: AuditReport) -> dict[str, Any]:
    return {
        "streams_audited": report.streams, "bars_compared": report.bars,
        "differences": len(report.differences), "mismatched": report.count("mismatch"),
        "missing": report.count("missing"), "unconfirmed": report.count("unconfirmed"),
        "repaired": report.repaired, "streams_skipped": len(report.skipped), "streams_failed": len(report.failed),
    }


def check_result(report: AuditReport) -> dg.AssetCheckResult:
    """ERROR with the differing bars; WARN when streams could not be audited; else PASS."""
    counts = _counts(report)
    if report.differences:
        streams = len({(s, tf) for s, tf, _, _ in report.differences})
        return dg.AssetCheckResult(
            check_name=CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
            description=f"{len(report.differences)} stored bars in {streams} streams differ from the exchange's; "
                        f"{report.repaired} repaired",
            metadata={**counts, "differing_bars": dg.MetadataValue.table(_rows(report.differences), DIFF_TABLE)})
    if report.failed:
        return dg.AssetCheckResult(
            check_name=CHECK, passed=False, severity=dg.AssetCheckSeverity.WARN,
            description=f"{len(report.failed)} streams could not be audited (REST failed)",
            metadata={**counts, "failed": dict(report.failed)})
    return dg.AssetCheckResult(check_name=CHECK, passed=True, metadata=counts,
                               description=f"{report.bars} bars in {report.streams} streams match the exchange")


@dg.asset(
    partitions_def=exchange_partitions, deps=[symbol_universe], group_name="integrity", kinds={"redis"},
    description="A sample of stored closed candles compared with the exchange's REST candles; differing "
                "bars are replaced by the exchange's (no close event, no alert).",
    check_specs=[dg.AssetCheckSpec(CHECK, asset="candle_audit",
                                   description="the sampled stored candles equal the exchange's")],
)
def candle_audit(context: AssetExecutionContext, config: CandleAuditConfig, database: DatabaseResource,
                 redis: RedisResource, exchange_clients: ExchangeClientsResource) -> dg.MaterializeResult:
    tolerance = _checked(config)
    row = exchange_row(database, context.partition_key)
    redis_url = resolve_redis_url(redis.settings(database.url))
    rotation = int(time.time() // 3600)  # a different sample each hour
    report = run_async(audit_exchange(row, redis_url, exchange_clients, config, tolerance, rotation, context.log))
    for symbol, tf, d, repaired in report.differences[:MAX_LISTED]:
        context.log.warning("%s %s %s %s %s: stored %s, exchange %s%s", row["name"], symbol, tf, _iso(d.timestamp),
                            d.kind, _ohlcv(d.stored) or "-", _ohlcv(d.exchange) or "-",
                            " (repaired)" if repaired else "")
    return dg.MaterializeResult(
        metadata={**_counts(report), "skipped": dict(report.skipped), "failed": dict(report.failed)},
        check_results=[check_result(report)])
