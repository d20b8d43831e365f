"""What every `livermore` subcommand shares: its parser, argument types, the settings, exchange names."""

from __future__ import annotations

import argparse
import difflib
import math
import shutil
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from streaming.errors import UsageError, one_line, shown
from streaming.timeframes import TIMEFRAMES

if TYPE_CHECKING:
    from streaming.settings import LivermoreSettings

TERMINAL_WIDTH = 80  # what every human-readable output fits
MAX_TIMEOUT_S = 86_400.0
MAX_LIMIT = 100_000
# the exchanges Livermore has adapters for: what a name is checked against before any database knows one
SUPPORTED_EXCHANGES = ("coinbase", "binance", "binance_us")


class _Commands(argparse._SubParsersAction):
    """Subcommands whose own --help opens with the one-line summary `livermore --help` shows, in
    CommandFormatter's layout."""

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        summary = kwargs.get("help")
        if summary and not kwargs.get("description"):
            kwargs["description"] = f"{summary[0].upper()}{summary[1:]}."
        kwargs.setdefault("formatter_class", CommandFormatter)  # every command's help within 80 columns
        return super().add_parser(name, **kwargs)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors in Livermore's form (`livermore: error: ...`, exit 2)."""

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("action", _Commands)
        return super().add_subparsers(**kwargs)

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("livermore").strip()
        text = f"{where}: {message}" if where else message
        self.exit(2, f"livermore: error: {one_line(text)} (see `{self.prog} --help`)\n")


class CommandFormatter(argparse.HelpFormatter):
    """Every command's summary starts on the command's line (argparse measures the command names
    without the extra indent it prints them with, and would push the longest one's summary down).
    Used by `livermore --help` and by every command's own help (`livermore db --help`)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        # at most 80 columns even in a wider terminal ($COLUMNS), as docs/cli.md promises; a
        # narrower one still gets its own width
        width = min(width or shutil.get_terminal_size().columns - 2, TERMINAL_WIDTH - 2)
        super().__init__(prog, indent_increment, max_help_position, width)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction) and action.help is not argparse.SUPPRESS:
            longest = max((len(name) for name in action.choices), default=0)
            self._action_max_length = max(self._action_max_length, longest + self._current_indent + 2)


def add_command(subparsers: Any, name: str, summary: str, details: str = "") -> argparse.ArgumentParser:
    """A subcommand with its one-line summary in `livermore --help` and the summary + details in its own."""
    description = f"{summary[0].upper()}{summary[1:]}." + (f" {details}" if details else "")
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, formatter_class=CommandFormatter, description=description)
    return parser


def settings_for(args: argparse.Namespace) -> LivermoreSettings:
    """The settings of this command; the offline home with `livermore --offline ...` (or `up --offline`)."""
    from streaming.settings import load_settings
    return load_settings(offline=bool(getattr(args, "offline_home", False) or getattr(args, "offline", False)))


# --- argument types: a bad value is an argparse error, reported in one line before anything runs ----

def seconds(text: str) -> float:
    """A positive, finite number of seconds (at most a day)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise argparse.ArgumentTypeError(f"{shown(text, 30)} is not a number of seconds between 0 and "
                                         f"{MAX_TIMEOUT_S:.0f}")
    return value


def number(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[str], float]:
    """A finite number in [low, high] (either end open with low_open / high_open)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (math.isfinite(value) and above and below):
            bound = f"above {low:g}" if low_open else f"from {low:g}"
            top = f"to below {high:g}" if high_open else f"to {high:g}"
            raise argparse.ArgumentTypeError(f"{shown(text, 30)} is not a number {bound} {top}")
        return value

    return parse


def port(text: str) -> int:
    if not (text.isdigit() and len(text) <= 5 and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{shown(text, 30)} is not a port number (1 to 65535)")
    return int(text)


def port_or_any(text: str) -> int:
    """A port number, or 0 for any free port."""
    return 0 if text.strip() == "0" else port(text)


def count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not (text.strip().isdigit() and len(text.strip()) <= 12 and low <= int(text) <= high):
            raise argparse.ArgumentTypeError(f"{shown(text, 30)} is not a whole number from {low} to {high}")
        return int(text)

    return parse


def target(text: str) -> str:
    """--target: '*', a worker id, or shard:K/N with 1 <= K <= N (a target no worker can match is refused)."""
    from streaming.control.shard import InvalidShard, parse_shard
    from streaming.worker.config import WORKER_ID_RE

    if text == "*":
        return text
    if text.startswith("shard:"):
        try:
            parse_shard(text.removeprefix("shard:"))
        except InvalidShard:
            raise argparse.ArgumentTypeError(f"{shown(text, 40)}: use shard:K/N with 1 <= K <= N, "
                                             "e.g. shard:1/3") from None
        return text
    if not WORKER_ID_RE.match(text):
        raise argparse.ArgumentTypeError(f"{shown(text, 40)} is neither '*', a worker id (letters, digits, "
                                         ". _ : -) nor shard:K/N")
    return text


def timeframe(text: str) -> str:
    if text not in TIMEFRAMES:
        raise argparse.ArgumentTypeError(f"unknown timeframe {shown(text, 30)}: Livermore keeps "
                                         f"{', '.join(TIMEFRAMES)}")
    return text


# --- exchange names --------------------------------------------------------------------------------

def known_exchanges(settings: LivermoreSettings, redis: Any = None) -> list[str]:
    """The exchange names of the database, else of Redis, else the supported ones (never waits long)."""
    from streaming.db.engine import make_engine
    from streaming.exchange_ids import from_database, from_redis

    engine = make_engine(settings.database_url.get_secret_value())
    try:
        known = from_database(engine)
    finally:
        engine.dispose()
    if not known and redis is not None:
        known = from_redis(redis)
    return sorted(known) or sorted(SUPPORTED_EXCHANGES)


def check_exchanges(settings: LivermoreSettings, redis: Any, names: list[str]) -> None:
    """An unknown exchange name is a usage error up front, with the closest known name suggested."""
    known = known_exchanges(settings, redis)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown exchange {shown(name, 40)}{hint}; known exchanges: {', '.join(known)}")


def check_named_exchanges(settings: LivermoreSettings, exchange: str | list[str] | None) -> None:
    """check_exchanges for an `--exchange` option (one name or a list), before Redis is touched."""
    names = [exchange] if isinstance(exchange, str) else list(exchange or [])
    if names:
        check_exchanges(settings, None, names)


def emit(line: str) -> None:
    """Print one line of output at once (consumers are read live, often through a pipe)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
