"""The local exchange simulator: Coinbase Advanced Trade, Binance and Binance.US on loopback, from
synthetic random walks and real recordings, with fault injection and the truth it served.

    async with ExchangeSimulator(SimConfig(symbols=3, seed=7, speed=60.0)) as sim:
        sim.urls["coinbase"].ws_url; sim.truth("coinbase", "SIM1-USD", "5m")
"""

from streaming.sim.config import ExchangeUrls, SimConfig, SimConfigError
from streaming.sim.faults import FAULT_KINDS, MALFORMED_KINDS, FaultError, FaultRecord
from streaming.sim.server import ExchangeSimulator

__all__ = ["FAULT_KINDS", "MALFORMED_KINDS", "ExchangeSimulator", "ExchangeUrls", "FaultError", "FaultRecord",
           "SimConfig", "SimConfigError"]
