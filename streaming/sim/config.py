"""What a simulator run looks like: symbols, seed, clock speed-up, faults budget, ports."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

EXCHANGES: tuple[str, ...] = ("coinbase", "binance", "binance_us")

# Binance and Binance.US share one protocol; only the symbols' quote and the port differ
BINANCE_LIKE = ("binance", "binance_us")


class SimConfigError(ValueError):
    """A simulator setting that cannot work; the message says which and why."""


# the real recordings the simulator serves ship inside the package (streaming/sim/data/README.md)
PACKAGED_RECORDINGS = Path(__file__).resolve().parent / "data"


def default_recordings_dir() -> Path | None:
    from streaming.settings import current_settings

    configured = current_settings().sim_recordings  # LIVERMORE_SIM_RECORDINGS, checked to be a folder
    if configured is not None:
        return configured
    return PACKAGED_RECORDINGS if PACKAGED_RECORDINGS.is_dir() else None


@dataclass(frozen=True)
class ExchangeUrls:
    ws_url: str
    rest_url: str

    def as_dict(self) -> dict[str, str]:
        return {"ws_url": self.ws_url, "rest_url": self.rest_url}


@dataclass(frozen=True)
class SimConfig:
    symbols: int = 3  # synthetic symbols per exchange
    seed: int = 1
    speed: float = 1.0  # simulated seconds per real second
    update_interval: float = 0.5  # real seconds between candle updates on every stream
    gap_probability: float = 0.0  # chance that a 5m bucket has no trade
    start_ms: int | None = None  # simulated clock at start; None = wall clock now
    history_days: int = 305  # >= 300 closed daily bars, so 1d warm-up works
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=dict)  # exchange -> port; 0 / missing = free port
    coinbase_symbol_format: str = "SIM{n}-USD"
    binance_symbol_format: str = "SIM{n}USDT"
    binance_us_symbol_format: str = "SIM{n}USD"
    recordings: Path | None = field(default_factory=default_recordings_dir)
    synthetic_live: bool = True  # False: WebSockets carry only replayed recordings (acks still sent)
    include_recorded_products: bool = True  # list the recorded products/exchangeInfo beside SIM*
    subscribe_timeout: float = 5.0  # real seconds a Coinbase connection may stay unsubscribed
    heartbeat_min_interval: float = 0.05  # real seconds: heartbeats are per simulated second, capped
    ping_interval_sim: float = 20.0  # Binance server ping, simulated seconds
    ping_min_interval: float = 0.25  # ... but never more often than this (real seconds)
    max_catch_up_bars: int = 300  # closed bars one stream replays after a stall/slow tick
    binance_weight_per_minute: int = 6000
    binance_ban_after: int = 3  # 429s answered to a client in one window before it gets 418
    binance_ban_seconds: float = 120.0
    shutdown_grace: float = 1.0  # real seconds between Binance serverShutdown and the close
    oversized_bytes: int = 2 * 1024 * 1024
    coinbase_key_name: str | None = None
    coinbase_private_key_pem: str | None = None  # EC P-256; generated when None
    binance_api_key: str | None = None
    binance_api_secret: str | None = None
    # real time (epoch seconds) for what the exchanges measure in real time: Binance's weight
    # minute and recvWindow, Coinbase's JWT validity; tests inject a fixed one
    wall_clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.symbols, int) or not 0 <= self.symbols <= 5000:
            raise SimConfigError(f"symbols must be an integer in 0..5000, got {self.symbols!r}")
        if not isinstance(self.speed, int | float) or not 0 < self.speed <= 1_000_000:
            raise SimConfigError(f"speed must be a number in (0, 1e6], got {self.speed!r}")
        if not isinstance(self.update_interval, int | float) or not 0.001 <= self.update_interval <= 60:
            raise SimConfigError(f"update_interval must be in [0.001, 60] seconds, got {self.update_interval!r}")
        if not isinstance(self.gap_probability, int | float) or not 0 <= self.gap_probability < 1:
            raise SimConfigError(f"gap_probability must be in [0, 1), got {self.gap_probability!r}")
        if not isinstance(self.history_days, int) or not 2 <= self.history_days <= 2000:
            raise SimConfigError(f"history_days must be an integer in 2..2000, got {self.history_days!r}")
        for name, fmt in (("coinbase_symbol_format", self.coinbase_symbol_format),
                          ("binance_symbol_format", self.binance_symbol_format),
                          ("binance_us_symbol_format", self.binance_us_symbol_format)):
            if "{n}" not in fmt:
                raise SimConfigError(f"{name} must contain '{{n}}', got {fmt!r}")
        for ex in self.ports:
            if ex not in EXCHANGES:
                raise SimConfigError(f"ports: unknown exchange {ex!r}; expected one of {', '.join(EXCHANGES)}")

    def symbol_format(self, exchange: str) -> str:
        return {"coinbase": self.coinbase_symbol_format, "binance": self.binance_symbol_format,
                "binance_us": self.binance_us_symbol_format}[exchange]
