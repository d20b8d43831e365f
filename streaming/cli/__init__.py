"""`livermore`: one console script; each module of this package adds its subcommands.

A module here defines `register(subparsers)` and sets `func=handler` on its parsers, where
`handler(args) -> int` returns the exit code. Errors a user can fix are raised as UsageError
and printed as one line (exit 2), never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys

from streaming.cli._common import CommandFormatter, Parser
from streaming.errors import UsageError, one_line

# exit codes of a command stopped from outside, as a shell reports a process killed by the signal
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_BROKEN_PIPE = 141  # the reader went away (`livermore alerts | head`)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("livermore")
    except PackageNotFoundError:
        return "unknown (not installed)"


class _Version(argparse.Action):
    """--version, which reads the installed version only when asked (importlib.metadata is slow)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"livermore {_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="livermore",
        formatter_class=CommandFormatter,
        description="Livermore: live MACD-V alerts for Coinbase, Binance and Binance.US. "
                    "`livermore COMMAND --help` describes each command.",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--offline", dest="offline_home", action="store_true",
                        help="use the home of `livermore up --offline` ($LIVERMORE_HOME/offline)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def _stdout_gone() -> int:
    # point stdout at /dev/null so the interpreter's final flush cannot fail a second time
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def main(argv: list[str] | None = None) -> int:
    # every file Livermore and the processes it starts create is private to this user
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic announces every plugin at INFO; users want the outcome, not the machinery
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except UsageError as exc:
        print(f"livermore: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_gone()


if __name__ == "__main__":
    sys.exit(main())
