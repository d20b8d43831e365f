"""The template's contract (streaming/adapters/_template/contract.py) against every real adapter,
the live and REST halves against the simulator."""

from __future__ import annotations

import pytest

from streaming.adapters._template import contract
from streaming.adapters._template.adapter import TemplateAdapter
from streaming.adapters.binance.parse import parse_frame as binance_parse
from streaming.adapters.coinbase.parse import parse_frame as coinbase_parse
from streaming.adapters.factory import ADAPTERS, adapter_class, build_adapter
from streaming.sim import ExchangeSimulator
from tests.adapters.recordings import binance_frames, coinbase_frames
from tests.helpers.sim import sim_config

# per exchange: simulator speed and adapter options; Coinbase streams 5m (0.5 s of real time
# here), Binance every timeframe (a daily bar lasts 4.3 s here)
SETUP = {"coinbase": (600.0, {"grace_ms": 120_000}), "binance": (20_000.0, {}), "binance_us": (20_000.0, {})}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_capabilities(name):
    contract.check_capabilities(adapter_class(name))


def test_the_template_itself_declares_a_valid_shape():
    contract.check_capabilities(TemplateAdapter)


def test_a_broken_declaration_is_named():
    class NoFiveMinutes(TemplateAdapter):
        native_timeframes = frozenset({"1h"})

    with pytest.raises(contract.ContractViolation, match="must include 5m"):
        contract.check_capabilities(NoFiveMinutes)

    class BadLimits(TemplateAdapter):
        default_limits = {"rest_requests_per_second": 0}

    with pytest.raises(contract.ContractViolation, match="positive numbers"):
        contract.check_capabilities(BadLimits)


@pytest.mark.parametrize("parse,frames", [(coinbase_parse, coinbase_frames), (binance_parse, binance_frames)],
                         ids=["coinbase", "binance"])
def test_parser(parse, frames, recordings_dir):
    contract.check_parser(parse, frames(recordings_dir))


@pytest.mark.parametrize("name", sorted(SETUP))
async def test_rest_and_live_against_the_simulator(name):
    speed, options = SETUP[name]
    async with ExchangeSimulator(sim_config(symbols=2, seed=5, speed=speed, update_interval=0.05)) as sim:
        row = {"id": 1, "name": name, **sim.urls[name].as_dict()}
        adapter = build_adapter(row, {}, clock_ms=sim.now_ms, **options)
        try:
            symbols = sim.symbols(name)
            await contract.check_rest(adapter, symbols[0], sim.now_ms)
            stats = await contract.check_live(adapter, symbols, sim.now_ms)
            assert stats["skipped_total"] == 0
        finally:
            await adapter.aclose()
