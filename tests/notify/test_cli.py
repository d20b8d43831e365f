"""`livermore notify add/list/remove/test/status`: bad input refused in one line (exit 2) with
nothing written, output within 80 columns, secrets shown nowhere."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa

from streaming.cli import main
from streaming.db.schema import notify_destinations, notify_subscriptions
from streaming.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, decode_body, verify_signature
from tests.helpers.commands import clean_env, run_livermore
from tests.notify.conftest import SECRET

TOKEN = "discord-token-Pq77"


@pytest.fixture
def cli_env(monkeypatch, redis_url, db_url, tmp_path):
    for k in list(os.environ):
        if k.startswith("LIVERMORE_"):
            monkeypatch.delenv(k)
    env = {"LIVERMORE_REDIS_URL": redis_url, "LIVERMORE_DATABASE_URL": db_url,
           "LIVERMORE_HOME": str(tmp_path / "home"), "HOOK_SECRET": SECRET, "DISCORD_ID": "1234567890",
           "DISCORD_TOKEN": TOKEN}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["notify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(notify_destinations)).scalar_one(),
                conn.execute(sa.select(sa.func.count()).select_from(notify_subscriptions)).scalar_one())


@pytest.mark.parametrize("args,reason", [
    (["d", "bogus://x"], "bogus:// is not a URL Apprise accepts"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--exchange", "kraken"], "unknown exchange 'kraken'"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--timeframe", "2h"], "unknown timeframe '2h'"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--type", "cross"], "unknown alert type 'cross'"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--tier", "3"], "unknown tier 3"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--symbol", "BTC:USD"], "symbol 'BTC:USD' rejected"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--min-level", "x"], "--min-level must be a number"),
    (["d", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--rate", "fast"], "rate 'fast' is invalid"),
    (["d", f"discord://1234567890/{TOKEN}"], "token or password in plain text"),
    (["d", "discord://{DISCORD_ID}/{NOT_SET}"], "NOT_SET is not set"),
    (["d", "https://127.0.0.1:9/hook"], "needs --secret-env"),
    (["d", "https://127.0.0.1:9/hook", "--secret-env", "NOPE"], "NOPE is not set"),
    (["bad name", "json://127.0.0.1/x"], "destination name 'bad name' is invalid"),
    (["nobody"], "no destination named 'nobody'"),
    (["nobody", "--rate", "5/2s"], "give its URL too"),
])
def test_bad_destinations_and_subscriptions_are_refused_in_one_line(cli_env, engine, capsys, args, reason):
    code, out, err = cli(capsys, "add", *args)
    assert code == 2 and out == ""
    assert err.startswith("livermore: error: ") and err.count("\n") == 1 and reason in err, err
    assert TOKEN not in err and SECRET not in err
    assert rows(engine) == (0, 0)


def test_add_list_remove_and_status(cli_env, engine, capsys):
    assert cli(capsys, "add", "desk", "discord://{DISCORD_ID}/{DISCORD_TOKEN}", "--exchange", "binance",
               "--timeframe", "1h,4h", "--min-level", "200")[0] == 0
    assert cli(capsys, "add", "desk", "--symbol", "BTCUSDT", "--tier", "1", "--type", "reversal")[0] == 0
    code, _, err = cli(capsys, "add", "desk", "json://127.0.0.1:9/x")
    assert code == 2 and "exists" in err
    assert rows(engine) == (1, 2)
    code, out, _ = cli(capsys, "list")
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines())
    assert "discord://{DISCORD_ID}/{DISCORD_TOKEN}" in out and "rate 5/2s (default)" in out
    assert "#1  binance 1h,4h level>=200" in out and "#2  tier 1 BTCUSDT reversal" in out
    listed = json.loads(cli(capsys, "list", "--json")[1])
    assert listed[0]["variables"] == ["DISCORD_ID", "DISCORD_TOKEN"] and len(listed[0]["subscriptions"]) == 2
    code, out, _ = cli(capsys, "status")
    assert code == 0 and "desk" in out and all(len(line) <= 80 for line in out.splitlines())
    import redis as redis_lib

    from streaming import keys
    with redis_lib.Redis.from_url(cli_env["LIVERMORE_REDIS_URL"]) as r:  # a busy destination, sent to lately
        r.hset(keys.notify_status(listed[0]["id"]), mapping={
            "sent": 1234567, "messages": 1234567, "digests": 123456, "failed": 123456, "dead": 12345,
            "last_sent_at": "2026-12-06T17:07:03.123456+00:00"})
    code, out, _ = cli(capsys, "status")
    assert code == 0 and "1234567" in out and "2026-12-06T17:07:03." in out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    for text in (out, json.dumps(listed)):
        assert TOKEN not in text
    assert cli(capsys, "remove", "desk", "--subscription", "1")[0] == 0
    code, _, err = cli(capsys, "remove", "desk", "--subscription", "1")
    assert code == 2 and "has no subscription 1" in err
    assert rows(engine) == (1, 1)
    assert cli(capsys, "remove", "desk")[0] == 0
    assert rows(engine) == (0, 0)


def test_notify_test_sends_a_signed_sample_and_reports_failures(redis_url, db_url, tmp_path, receiver):
    env = clean_env({"LIVERMORE_REDIS_URL": redis_url, "LIVERMORE_DATABASE_URL": db_url,
                     "LIVERMORE_HOME": str(tmp_path / "home"), "HOOK_SECRET": SECRET})
    add = run_livermore(["notify", "add", "hook", receiver.url("/t"), "--secret-env", "HOOK_SECRET"], env)
    assert add.returncode == 0, add.stderr
    ok = run_livermore(["notify", "test", "hook"], env)
    assert ok.returncode == 0 and "sent a test alert to hook (webhook)" in ok.stdout, ok.stderr
    (got,) = receiver.accepted("/t")
    ts = got.headers[TIMESTAMP_HEADER]
    assert verify_signature(SECRET.encode(), ts, got.body, got.headers[SIGNATURE_HEADER], now=int(ts))
    assert decode_body(got.body).alerts[0].symbol == "TEST-USD"
    receiver.status["/t"] = 500
    bad = run_livermore(["notify", "test", "hook"], env)
    assert bad.returncode == 1 and "test alert to hook failed: HTTP 500" in bad.stderr
    unset = run_livermore(["notify", "test", "hook"], {k: v for k, v in env.items() if k != "HOOK_SECRET"})
    assert unset.returncode == 2 and unset.stderr.strip().endswith("export it in this shell to test hook")
    for r in (add, ok, bad, unset):
        assert SECRET not in r.stdout + r.stderr


def test_offline_notify_commands_use_the_offline_home(monkeypatch, tmp_path, capsys):
    for k in list(os.environ):
        if k.startswith("LIVERMORE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("LIVERMORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    for prefix in ([], ["--offline"]):
        assert main([*prefix, "db", "upgrade"]) == 0
    assert main(["--offline", "notify", "add", "sim-hook", "https://127.0.0.1:9/h", "--secret-env", "HOOK_SECRET"]) == 0
    capsys.readouterr()
    assert main(["--offline", "notify", "list", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["sim-hook"]
    assert main(["notify", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # the online home has none
