"""The CLI explains itself: help for everything, and every bad argument or setting is one line, exit 2,
before anything starts (no traceback, no wait, nothing echoed raw)."""

from __future__ import annotations

import argparse
import time

import pytest

from streaming.cli import build_parser
from tests.helpers.commands import clean_env, run_livermore

WIDTH = 80


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommands(sub, (*prefix, name))


def test_every_command_option_and_positional_says_what_it_is():
    parser = build_parser()
    commands = dict(_subcommands(parser))
    assert {"up", "down", "redis-url", "status", "db", "worker", "start", "stop", "workers", "alerts",
            "candles", "exchange-sim", "reload-symbols"} <= {path[0] for path in commands}
    missing = []
    for path, sub in [((), parser), *commands.items()]:
        if path and not sub.description:
            missing.append(f"{' '.join(path)}: no description")
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{' '.join((*path, c.dest))}: no summary" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{' '.join(path) or 'livermore'} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_a_subcommand_is_shown_required_exactly_where_it_is():
    """`livermore notify` alone runs the service: its usage must not show a required subcommand,
    and a command that needs one must not show it as optional."""
    parser = build_parser()
    for path, sub in [((), parser), *dict(_subcommands(parser)).items()]:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                runs_alone = sub.get_default("func") is not None
                usage = sub.format_usage()
                shown_optional = "[" + (action.metavar or "").strip("[]") + "]" in usage
                assert shown_optional == runs_alone, (path, usage)


def test_help_and_version_fit_a_terminal():
    env = clean_env({"COLUMNS": str(WIDTH)})
    top = run_livermore(["--help"], env)
    assert top.returncode == 0
    commands = {path[0] for path, _ in _subcommands(build_parser())}
    listed = [line for line in top.stdout.splitlines() if line[4:5].strip() and line.split()[0] in commands]
    assert len(listed) == len(commands), top.stdout
    for line in listed:  # each command's summary starts on its line
        assert len(line.split()) > 2, f"no summary on the command's line: {line!r}"
    for args in (["--help"], ["up", "--help"], ["worker", "--help"], ["db", "downgrade", "--help"]):
        out = run_livermore(args, env)
        assert out.returncode == 0 and max(map(len, out.stdout.splitlines())) <= WIDTH
    version = run_livermore(["--version"], env)
    assert version.returncode == 0 and version.stdout.startswith("livermore ")


def test_help_stays_within_80_columns_in_a_wider_terminal(monkeypatch):
    out = run_livermore(["--help"], clean_env({"COLUMNS": "200"}))
    assert out.returncode == 0 and max(map(len, out.stdout.splitlines())) <= 80, out.stdout
    monkeypatch.setenv("COLUMNS", "200")  # argparse asks for the width when it formats
    parser = build_parser()
    for path, sub in [((), parser), *dict(_subcommands(parser)).items()]:
        wide = [line for line in sub.format_help().splitlines() if len(line) > 80]
        assert not wide, (path, wide)


ESC = "\x1b"
HUGE = "9" * 30


@pytest.mark.parametrize(
    ("args", "env_extra", "needle"),
    [
        (["start", "coinbase", "--timeout", "nan"], {}, "--timeout"),
        (["start", "coinbase", "--timeout", "inf"], {}, "--timeout"),
        (["stop", "--timeout", "-1"], {}, "--timeout"),
        (["stop", "--target", "shard:0/0"], {}, "shard:K/N"),
        (["reload-symbols", "coinbase", "--target", "a b"], {}, "--target"),
        (["start", "coinbase", "--symbols", "BTC USD"], {}, "symbol 'BTC USD' rejected"),
        (["alerts", "--exchange", "coinbse"], {}, "did you mean 'coinbase'"),
        (["candles", "--follow", "--exchange", "binanse"], {}, "did you mean 'binance'"),
        (["worker", "--user", HUGE], {}, "not a user id"),
        (["candles", "--exchange", "coinbase", "--symbol", "BTC-USD", "--timeframe", "5m", "--limit", HUGE], {},
         "--limit"),
        (["candles", "--follow", "--timeframe", "1m"], {}, "5m, 15m, 1h, 4h, 1d"),
        (["worker", "--symbols", "nosuch=BTC-USD"], {}, "unknown exchange 'nosuch'"),
        (["up", "--port", "-1"], {}, "not a port number"),
        (["up", "--port", "70000"], {}, "not a port number"),
        (["up", "--offline", "--sim-speed", "nan"], {}, "--sim-speed"),
        (["exchange-sim", "--gap-probability", "2"], {}, "--gap-probability"),
        (["exchange-sim", "--gap-probability", "1"], {}, "from 0 to below 1"),
        (["exchange-sim", "--update-interval", "100"], {}, "--update-interval"),
        (["exchange-sim", "--host", ""], {}, "--allow-remote"),
        (["exchange-sim", "--host", "0.0.0.0"], {}, "--allow-remote"),
        (["status"], {"LIVERMORE_SIM_CLOCK": "abc"}, "LIVERMORE_SIM_CLOCK"),
        (["status"], {"LIVERMORE_BINANCE_WS_URL": "ws://[::1"}, "LIVERMORE_BINANCE_WS_URL"),
        (["status"], {"LIVERMORE_COINBASE_WS_URL": "http://u:hunter2@h"}, "LIVERMORE_COINBASE_WS_URL='http://u:***@h'"),
        (["status"], {"LIVERMORE_REDIS_SERVER_BIN": "{tmp}/plain-file"}, "not an executable file"),
        (["status"], {"LIVERMORE_UNIVERSE_CHECK_S": "nan"}, "LIVERMORE_UNIVERSE_CHECK_S"),
        (["status"], {"LIVERMORE_UNIVERSE_CHECK_S": "-1"}, "LIVERMORE_UNIVERSE_CHECK_S"),
        (["status"], {"LIVERMORE_UNIVERSE_CHECK_S": "inf"}, "LIVERMORE_UNIVERSE_CHECK_S"),
        (["status"], {"LIVERMORE_LIVE_SENSOR_S": "4"}, "from 5 to 3600"),
        (["status"], {"LIVERMORE_LIVE_SENSOR_S": "2.5"}, "LIVERMORE_LIVE_SENSOR_S"),
        (["status"], {"LIVERMORE_LIVE_SENSOR_S": "9" * 5000}, "LIVERMORE_LIVE_SENSOR_S"),
        (["status"], {"LIVERMORE_REDIS_URL": "redis://:hunter2@127.0.0.1/abc"}, "database number 'abc'"),
        (["status"], {"LIVERMORE_SYSTEM_USER": HUGE}, "LIVERMORE_SYSTEM_USER"),
        (["status"], {"LIVERMORE_DEPLOYMENT": "staging"}, "local or production"),
    ],
)
def test_bad_input_is_one_line_exit_2_at_once(tmp_path, args, env_extra, needle):
    plain = tmp_path / "plain-file"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    env_extra = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env_extra.items()}
    started = time.monotonic()
    res = run_livermore(args, clean_env({"LIVERMORE_HOME": str(tmp_path / "home"), **env_extra}), timeout=30)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert time.monotonic() - started < 10
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livermore: error: "), res.stderr
    assert needle in lines[0]
    assert "hunter2" not in res.stderr and len(lines[0]) <= 400


def test_an_unknown_exchange_is_named_at_once_on_a_fresh_home(tmp_path):
    """No database yet, no worker, no Redis: the typo is still reported at once, with a suggestion."""
    started = time.monotonic()
    res = run_livermore(["start", "coinbse"], clean_env({"LIVERMORE_HOME": str(tmp_path / "fresh")}), timeout=30)
    assert res.returncode == 2
    assert time.monotonic() - started < 10
    assert "unknown exchange 'coinbse' (did you mean 'coinbase'?)" in res.stderr


def test_echoed_arguments_are_cut_and_harmless(tmp_path):
    hostile = f"x{ESC}[31mred{ESC}]0;title\x07\nsecond line" + "A" * 10_000
    res = run_livermore(["start", hostile], clean_env({"LIVERMORE_HOME": str(tmp_path / "home")}), timeout=30)
    assert res.returncode == 2
    assert ESC not in res.stderr and "\x07" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and len(res.stderr) < 400
    bad_flag = run_livermore(["candles", "--timeframe", hostile], clean_env(), timeout=30)
    assert bad_flag.returncode == 2 and ESC not in bad_flag.stderr and len(bad_flag.stderr) < 500


def test_db_downgrade_without_a_revision_asks_first(tmp_path, sqlite_url):
    env = clean_env({"LIVERMORE_HOME": str(tmp_path / "home"), "LIVERMORE_DATABASE_URL": sqlite_url})
    assert run_livermore(["db", "upgrade"], env).returncode == 0
    refused = run_livermore(["db", "downgrade"], env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "(empty database)" not in run_livermore(["db", "current"], env).stdout
    assert run_livermore(["db", "downgrade", "base"], env).returncode == 0
    assert "(empty database)" in run_livermore(["db", "current"], env).stdout


def test_status_from_any_directory_reaches_the_same_home(tmp_path):
    """No LIVERMORE_HOME: the per-user data directory, whatever the current directory."""
    env = clean_env({"XDG_DATA_HOME": str(tmp_path / "data")})
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    import subprocess

    from tests.helpers.commands import LIVERMORE

    def run_in(cwd, args):
        return subprocess.run([*LIVERMORE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)

    try:
        assert run_in(one, ["db", "upgrade"]).returncode == 0
        assert run_in(one, ["redis-url"]).returncode == 0  # the embedded server of that home runs
        status = run_in(two, ["status"])
        assert status.returncode == 0, status.stderr
        home = tmp_path / "data" / "livermore"
        assert str(home) in status.stdout.split()
        assert "(embedded)" in status.stdout and "Coinbase Advanced Trade" in status.stdout
        assert max(map(len, status.stdout.splitlines())) <= WIDTH
        assert not (one / ".livermore").exists() and not (two / ".livermore").exists()
    finally:
        from streaming.redis_server import stop_embedded_redis

        stop_embedded_redis(tmp_path / "data" / "livermore")


def test_offline_commands_use_the_offline_home(tmp_path):
    env = clean_env({"LIVERMORE_HOME": str(tmp_path / "home")})
    try:
        online = run_livermore(["redis-url"], env).stdout
        offline = run_livermore(["--offline", "redis-url"], env).stdout
        assert online and offline and online != offline  # two homes, two servers
        assert (tmp_path / "home" / "offline" / "redis" / "server.json").exists()
    finally:
        from streaming.redis_server import stop_embedded_redis

        stop_embedded_redis(tmp_path / "home")
        stop_embedded_redis(tmp_path / "home" / "offline")
