"""`start_streaming` / `stop_streaming`: drive the streaming worker over the Redis control plane."""

import time
from datetime import datetime

import dagster as dg
from dagster import OpExecutionContext

from livermore_pipelines import control, start_report
from livermore_pipelines.assets.common import exchange_row
from livermore_pipelines.partitions import EXCHANGE_NAMES
from livermore_pipelines.resources import DatabaseResource, DeploymentResource, RedisResource, platform_settings
from livermore_pipelines.start_report import ProgressTenths
from livermore_pipelines.store import read_universe
from streaming.errors import UsageError

POLL_S = 0.25
# A status written this long before `start` was sent still counts: clocks of two hosts differ.
CLOCK_SLACK_S = 15.0


class StreamingConfig(dg.Config):
    exchange: str
    user: int | None = None
    timeout_s: float = 60.0
    # None: the deployment resource decides (local spawns a worker, production runs it as a service)
    spawn_worker: bool | None = None

    def should_spawn(self, deployment: DeploymentResource) -> bool:
        return deployment.spawns_workers if self.spawn_worker is None else self.spawn_worker


def _check_exchange_name(name: str) -> None:
    if name not in EXCHANGE_NAMES:
        raise dg.Failure(description=f"unknown exchange {name!r}; set run config ops.*.config.exchange to one of "
                                     f"{', '.join(EXCHANGE_NAMES)}")


def _parse_ts(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _fresh_connected(status: dict[str, str], since: float) -> bool:
    if status.get("connection_state") != "connected":
        return False
    stamps = [t for t in (_parse_ts(status.get("updated_at")), _parse_ts(status.get("last_heartbeat"))) if t]
    return not stamps or max(stamps) >= since - CLOCK_SLACK_S


def _response_failure(verb: str, exchange: str, response: dict) -> dg.Failure:
    reason = response.get("reason") or response.get("status") or "no reason given"
    return dg.Failure(description=f"the worker answered `{verb}` for {exchange} with an error: {reason}; "
                                  "see the worker log and `livermore status`",
                      metadata={"response": dg.MetadataValue.json(response)})


@dg.op(description="Make sure a worker runs, send it `start` for an exchange and wait until it is connected.")
def start_exchange_streaming(context: OpExecutionContext, config: StreamingConfig, database: DatabaseResource,
                             redis: RedisResource, deployment: DeploymentResource) -> dg.Output[int]:
    _check_exchange_name(config.exchange)
    row = exchange_row(database, config.exchange)
    exchange_id = int(row["id"])
    with redis.client() as r:
        universe = read_universe(r, exchange_id)
        symbols = len(universe.get("symbols") or []) if universe else 0
        if not symbols:
            raise dg.Failure(description=f"no symbol universe for {config.exchange}: materialize the "
                                         f"symbol_universe asset for partition {config.exchange!r} first")
        if config.should_spawn(deployment):
            try:
                spawn = control.ensure_worker_running(platform_settings(database, redis), r)
            except UsageError as exc:
                raise dg.Failure(description=f"cannot start a worker: {exc}") from None
        else:
            workers = control.live_workers(r)
            if not workers:
                raise dg.Failure(description="no live streaming worker: start the worker service "
                                             "(`livermore worker`) or set spawn_worker: true")
            spawn = {"spawned": False, "worker_id": workers[0]["worker_id"], "pid": workers[0].get("pid")}
        context.log.info("worker: %s", spawn)
        sent_at = time.time()
        try:
            response = control.send(r, "start", exchange=config.exchange, user=config.user,
                                    timeout=config.timeout_s,
                                    on_progress=ProgressTenths(config.exchange, context.log.info))
        except ValueError as exc:  # CommandError: the worker protocol refused the arguments
            raise dg.Failure(description=f"cannot send `start`: {exc}") from None
        if response.get("status") != "success":
            raise _response_failure("start", config.exchange, response)
        deadline = time.monotonic() + config.timeout_s
        status = control.connection_state(r, exchange_id)
        while not _fresh_connected(status, sent_at):
            if time.monotonic() > deadline:
                raise dg.Failure(
                    description=f"{config.exchange} did not connect within {config.timeout_s} s "
                                f"(state {status.get('connection_state', 'unknown')}, last error: "
                                f"{status.get('last_error') or 'none'}); check the exchange URL and network, "
                                "or raise timeout_s",
                    metadata={"status": dg.MetadataValue.json(status)})
            time.sleep(POLL_S)
            status = control.connection_state(r, exchange_id)
    result = response.get("result") or {}
    refusals, warm = start_report.refused(result), start_report.warm_up(result)
    context.log.info("%s streaming %d symbols (warm-up %s)", config.exchange, symbols, warm)
    if refusals:
        context.log.warning("%s refused %d symbol(s): %s", config.exchange, len(refusals),
                            "; ".join(f"{s}: {why}" for s, why in list(refusals.items())[:10]))
    return dg.Output(symbols, metadata={
        "refused": dg.MetadataValue.json(refusals), "warm_up": dg.MetadataValue.json(warm),
        "outcome": "connected", "exchange": config.exchange, "symbols": symbols,
        "user": config.user if config.user is not None else "all",
        "worker": dg.MetadataValue.json(spawn if isinstance(spawn, dict) else {"result": str(spawn)}),
        "response": dg.MetadataValue.json(response),
    })


@dg.op(description="Send the worker `stop` for an exchange.")
def stop_exchange_streaming(context: OpExecutionContext, config: StreamingConfig,
                            redis: RedisResource) -> dg.Output[str]:
    _check_exchange_name(config.exchange)
    with redis.client() as r:
        try:
            if not control.live_workers(r):
                context.log.info("no live worker: nothing streams %s", config.exchange)
                return dg.Output("no worker", metadata={"outcome": "no worker", "exchange": config.exchange})
            response = control.send(r, "stop", exchange=config.exchange, user=config.user, timeout=config.timeout_s)
        except ValueError as exc:  # CommandError: the worker protocol refused the arguments
            raise dg.Failure(description=f"cannot send `stop`: {exc}") from None
    if response.get("status") != "success":
        raise _response_failure("stop", config.exchange, response)
    return dg.Output("stopped", metadata={"outcome": "stopped", "exchange": config.exchange,
                                          "response": dg.MetadataValue.json(response)})


@dg.job(description="Start streaming one exchange (run config: exchange, optional user, timeout_s).")
def start_streaming() -> None:
    start_exchange_streaming()


@dg.job(description="Stop streaming one exchange.")
def stop_streaming() -> None:
    stop_exchange_streaming()


refresh_symbols = dg.define_asset_job(
    "refresh_symbols",
    selection=dg.AssetSelection.assets("tier1_symbols", "tier2_positions", "symbol_universe"),
    description="Re-rank Tier 1, re-sync Tier 2 positions and republish the universe of one exchange.",
)
