"""Adapter factory: an `exchanges` row (as a mapping) -> a ready ExchangeAdapter.

URLs come from the row unless LIVERMORE_<NAME>_WS_URL / LIVERMORE_<NAME>_REST_URL override them
(NAME upper-cased: LIVERMORE_BINANCE_US_WS_URL). Limits and intervals come from the adapter
class's declared capabilities; the row's api_limits override the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from streaming.adapters.base import AdapterError, ExchangeAdapter, ExchangeConfig
from streaming.settings import current_settings, settings_from
from streaming.timeframes import TIMEFRAME_MS, TIMEFRAMES


class UnknownExchangeError(AdapterError):
    pass


class InactiveExchangeError(AdapterError):
    pass


class BadExchangeConfigError(AdapterError):
    pass


def _coinbase() -> type[ExchangeAdapter]:
    from streaming.adapters.coinbase.adapter import CoinbaseAdapter

    return CoinbaseAdapter


def _binance() -> type[ExchangeAdapter]:
    from streaming.adapters.binance.adapter import BinanceAdapter

    return BinanceAdapter


def _binance_us() -> type[ExchangeAdapter]:
    from streaming.adapters.binance.adapter import BinanceUSAdapter

    return BinanceUSAdapter


# exchange name -> its adapter class (imported on first use)
ADAPTERS: dict[str, Callable[[], type[ExchangeAdapter]]] = {
    "coinbase": _coinbase,
    "binance": _binance,
    "binance_us": _binance_us,
}


def adapter_class(name: str) -> type[ExchangeAdapter]:
    """The adapter class of a supported exchange (its capabilities, without building it)."""
    loader = ADAPTERS.get(name)
    if loader is None:
        raise UnknownExchangeError(f"no adapter for exchange {name!r} (supported: {', '.join(sorted(ADAPTERS))})")
    return loader()


def _url(value: object, what: str, name: str, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadExchangeConfigError(f"exchange {name!r}: {what} is missing; set it in the exchanges table "
                                     f"or LIVERMORE_{name.upper()}_{what.upper()}")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise BadExchangeConfigError(f"exchange {name!r}: {what} {url!r} is not a {'/'.join(schemes)} URL")
    return url


def _limits(cls: type[ExchangeAdapter], name: str, raw: object) -> dict[str, Any]:
    limits: dict[str, Any] = dict(cls.default_limits)
    if raw is None:
        return limits
    if not isinstance(raw, Mapping):
        raise BadExchangeConfigError(f"exchange {name!r}: api_limits must be an object, got {type(raw).__name__}")
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise BadExchangeConfigError(f"exchange {name!r}: api_limits.{key}={value!r} must be a positive number")
        limits[str(key)] = value
    return limits


def _timeframes(cls: type[ExchangeAdapter], name: str, raw: object) -> tuple[str, ...]:
    if raw is None:
        return TIMEFRAMES
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise BadExchangeConfigError(f"exchange {name!r}: ws_timeframes must be a list like ['5m', '1h']")
    out = []
    for tf in raw:
        if isinstance(tf, str) and tf in TIMEFRAME_MS:
            out.append(tf)
        elif not (isinstance(tf, str) and tf in cls.exchange_intervals):
            raise BadExchangeConfigError(f"exchange {name!r}: unknown timeframe {tf!r} in ws_timeframes")
        # else: an interval the exchange has but Livermore does not keep (the seed lists them all)
    return tuple(out) or TIMEFRAMES


def exchange_config(row: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ExchangeConfig:
    name = row.get("name")
    if not isinstance(name, str) or not name:
        raise BadExchangeConfigError(f"exchanges row without a name: {sorted(row)}")
    cls = adapter_class(name)
    ws_override, rest_override = (current_settings() if env is None else settings_from(env)).exchange_urls(name)
    ws_url = _url(ws_override or row.get("ws_url"), "ws_url", name, ("ws", "wss"))
    rest_url = _url(rest_override or row.get("rest_url"), "rest_url", name, ("http", "https"))
    exchange_id = row.get("id")
    if isinstance(exchange_id, bool) or not isinstance(exchange_id, int):
        raise BadExchangeConfigError(f"exchange {name!r}: id must be an integer, got {exchange_id!r}")
    return ExchangeConfig(exchange_id=exchange_id, name=name, ws_url=ws_url, rest_url=rest_url,
                          api_limits=_limits(cls, name, row.get("api_limits")),
                          timeframes=_timeframes(cls, name, row.get("ws_timeframes")))


def build_adapter(row: Mapping[str, Any], env: Mapping[str, str] | None = None, *,
                  known: Iterable[str] | None = None, **options: Any) -> ExchangeAdapter:
    """The adapter for one `exchanges` row; `options` go to the adapter (e.g. clock_ms, grace_ms).

    `known` names the exchanges that exist (for the error message); default: the supported ones.
    """
    name = row.get("name")
    names = sorted(known) if known is not None else sorted(ADAPTERS)
    loader = ADAPTERS.get(name) if isinstance(name, str) else None
    if loader is None:
        raise UnknownExchangeError(f"no adapter for exchange {name!r}; exchanges: {', '.join(names)} "
                                   f"(supported: {', '.join(sorted(ADAPTERS))})")
    if not row.get("is_active", True):
        raise InactiveExchangeError(f"exchange {name!r} is inactive (exchanges.is_active = false); "
                                    f"activate it or use one of: {', '.join(names)}")
    settings = current_settings() if env is None else settings_from(env)
    sim_clock = settings.sim_clock
    if "clock_ms" not in options and sim_clock is not None:
        options["clock_ms"] = sim_clock.now_ms()  # offline mode: the simulator's faster clock
    options.setdefault("stale_after_s", settings.stale_after(str(name)))
    return loader()(exchange_config(row, env), **options)


def build_adapter_by_name(rows: Iterable[Mapping[str, Any]], name: str,
                          env: Mapping[str, str] | None = None, **options: Any) -> ExchangeAdapter:
    rows = list(rows)
    names = [str(r.get("name")) for r in rows]
    for row in rows:
        if row.get("name") == name:
            return build_adapter(row, env, known=names, **options)
    raise UnknownExchangeError(f"unknown exchange {name!r}; exchanges: {', '.join(sorted(names)) or '(none)'}")
