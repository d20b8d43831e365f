"""The platform the end-to-end tests drive: a migrated database, the simulator on 127.0.0.1
(every process the jobs spawn talks to it and shares its clock), Dagster's resources and an
ephemeral instance; spawned workers are stopped at the end."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from livermore_pipelines.assets.exchanges import exchanges
from livermore_pipelines.assets.tiers import tier1_symbols, tier2_positions
from livermore_pipelines.assets.universe import symbol_universe
from livermore_pipelines.resources import (
    DatabaseResource,
    DeploymentResource,
    ExchangeClientsResource,
    RedisResource,
)
from streaming.control import spawn
from streaming.db.migrate import upgrade
from streaming.sim import ExchangeSimulator
from streaming.sim.testing import running_simulator
from tests.helpers.sim import sim_clock_env, sim_config


@contextlib.contextmanager
def sim_platform(sqlite_url: str, redis_url: str, home: Path, monkeypatch: pytest.MonkeyPatch, *, symbols: int,
                 speed: float) -> Iterator[tuple[ExchangeSimulator, dict[str, Any], dg.DagsterInstance]]:
    upgrade(sqlite_url)  # `livermore db upgrade`: the exchanges asset does not migrate
    with running_simulator(sim_config(symbols=symbols, seed=3, speed=speed, include_recorded_products=False)) as sim:
        for name, urls in sim.urls.items():
            # the op spawns the worker with this environment: it talks to the simulator too
            monkeypatch.setenv(f"LIVERMORE_{name.upper()}_REST_URL", urls.rest_url)
            monkeypatch.setenv(f"LIVERMORE_{name.upper()}_WS_URL", urls.ws_url)
        for name, value in sim_clock_env(sim).items():
            monkeypatch.setenv(name, value)
        resources = {"database": DatabaseResource(url=sqlite_url),
                     "redis": RedisResource(url=redis_url, home=str(home)),
                     "exchange_clients": ExchangeClientsResource(), "deployment": DeploymentResource()}
        with dg.DagsterInstance.ephemeral() as instance:
            try:
                yield sim, resources, instance
            finally:
                spawn.stop_spawned_workers()


def publish_universe(exchange: str, resources: dict[str, Any], instance: dg.DagsterInstance) -> None:
    """exchanges, then the exchange's tiers and universe, as a user would materialize them."""
    assert dg.materialize([exchanges], resources=resources, instance=instance).success
    for asset in (tier1_symbols, tier2_positions, symbol_universe):
        assert dg.materialize([asset], resources=resources, instance=instance, partition_key=exchange).success
