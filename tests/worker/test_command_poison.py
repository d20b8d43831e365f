"""Poison entries on worker:commands against a real worker process: none silences its command plane."""

from __future__ import annotations

import redis

from streaming import keys
from streaming.control.client import ControlClient
from tests.servers import wait_for


def raw_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)  # bytes in, bytes out: can write what a decoding client cannot read


def answer(redis_client, command_id: str, timeout: float = 15) -> dict:
    return ControlClient(redis_client).wait(command_id, timeout=timeout)


def stream_id_ms(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def test_poison_entries_are_answered_or_skipped_and_valid_commands_still_run(start_worker, redis_client, redis_url):
    worker = start_worker()
    raw = raw_client(redis_url)
    try:
        no_id = raw.xadd(keys.COMMANDS_STREAM, {b"id": b"\xff\xfe", b"command": b"status"}).decode()
        raw.xadd(keys.COMMANDS_STREAM, {b"id": b"bad-bytes", b"command": b"st\xffatus"})
        raw.xadd(keys.COMMANDS_STREAM, {b"id": b"bad-name", b"\xc3\x28": b"x", b"command": b"status"})
        raw.xadd(keys.COMMANDS_STREAM, {b"id": b"bad-json-bytes", b"json": b'{"command": "\xff"}'})
        raw.xadd(keys.COMMANDS_STREAM, {b"\xff": b"\xfe"})
    finally:
        raw.close()
    redis_client.xadd(keys.COMMANDS_STREAM, {"id": "bad-json", "json": "{not json"})
    redis_client.xadd(keys.COMMANDS_STREAM, {"id": "deep", "json": "[" * 100_000 + "]" * 100_000})
    redis_client.xadd(keys.COMMANDS_STREAM, {"id": "huge", "command": "start", "exchange": "coinbase",
                                             "user": "9" * 400})
    twice = {"id": "twice", "command": "status"}
    redis_client.xadd(keys.COMMANDS_STREAM, twice)
    last = redis_client.xadd(keys.COMMANDS_STREAM, twice)

    for command_id, reason in (("bad-bytes", "not valid UTF-8"), ("bad-name", "not valid UTF-8"),
                               ("bad-json-bytes", "not valid UTF-8"), ("bad-json", "invalid JSON"),
                               ("deep", "invalid JSON"), ("huge", "user must be a positive integer")):
        got = answer(redis_client, command_id)
        assert got["status"] == "error" and reason in got["reason"], (command_id, got)
        assert "Traceback" not in got["reason"] and "\n" not in got["reason"]
    assert answer(redis_client, "twice")["status"] == "success"
    fresh = ControlClient(redis_client).send("status", timeout=10)
    assert fresh["status"] == "success", fresh
    # the duplicate id ran once: one ack, one answer
    assert [r["status"] for r in ControlClient(redis_client).responses("twice")] == ["ack", "success"]
    assert worker.proc.poll() is None
    assert f"skipped command entry {no_id}" in worker.log()
    wait_for(lambda: stream_id_ms(redis_client.get(keys.worker_cursor(worker.worker_id)) or "0-0")
             >= stream_id_ms(last), timeout=10, message="the cursor saved past the poison entries")


def test_restart_with_the_same_id_resumes_after_the_poison_entry(start_worker, redis_client, redis_url):
    first = start_worker("--worker-id", "poisoned")
    raw = raw_client(redis_url)
    try:
        poison = raw.xadd(keys.COMMANDS_STREAM, {b"id": b"\xff", b"command": b"\xfe"}).decode()
    finally:
        raw.close()
    assert ControlClient(redis_client).send("status", timeout=10)["status"] == "success"
    wait_for(lambda: stream_id_ms(redis_client.get(keys.worker_cursor("poisoned")) or "0-0")
             > stream_id_ms(poison), timeout=10, message="the cursor saved past the poison entry")
    assert first.terminate() == 0
    assert f"skipped command entry {poison}" in first.log()

    second = start_worker("--worker-id", "poisoned")
    assert ControlClient(redis_client).send("status", timeout=10)["status"] == "success"
    assert second.proc.poll() is None
    assert poison not in second.log()  # resumed after it: not even read again


def test_a_new_worker_replaying_poison_does_not_die(start_worker, redis_client, redis_url):
    raw = raw_client(redis_url)
    try:
        raw.xadd(keys.COMMANDS_STREAM, {b"id": b"\xff\xff", b"command": b"status"})
        raw.xadd(keys.COMMANDS_STREAM, {b"json": b"\x80" * 100})
    finally:
        raw.close()
    client = ControlClient(redis_client)
    before = client.post("status")  # sent before the worker started, after the poison
    worker = start_worker()
    assert client.wait(before, timeout=15)["status"] == "success"
    assert client.send("status", timeout=10)["status"] == "success"
    assert worker.proc.poll() is None
    assert "skipped command entry" in worker.log()
