"""Apprise destinations against local endpoints: its json:// and form:// schemes at the HTTP receiver
and mailto:// at an aiosmtpd server with a password, each with the MACD-V chart attached; and no
secret in the logs, in Redis or in the database."""

from __future__ import annotations

import base64
import email
import io
import json
import logging
import socket

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from PIL import Image

from streaming import keys
from streaming.db.schema import metadata
from streaming.notify import store
from streaming.notify.chart import HEIGHT_PX, WIDTH_PX
from streaming.notify.outbox import RetryPolicy
from streaming.notify.sample import sample_candles
from streaming.store import CandleStore
from tests.notify.conftest import SECRET, make_alert, publish, running, wait_until

SMTP_PASS = "smtp-pass-Zq81xx"
JSON_PASS = "json-pass-Hh27yy"
ENV = {"HOOK_SECRET": SECRET, "SMTP_USER": "trader", "SMTP_PASS": SMTP_PASS, "JSON_PASS": JSON_PASS}
SECRETS = (SECRET, SMTP_PASS, JSON_PASS)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook name
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


def _login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"trader" and \
        auth_data.password == SMTP_PASS.encode()
    return AuthResult(success=ok)


@pytest.fixture
def smtp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=_login, auth_require_tls=False)
    controller.start()
    yield port, inbox
    controller.stop()


def _png(data: bytes) -> None:
    img = Image.open(io.BytesIO(data))
    assert img.format == "PNG" and img.size == (WIDTH_PX, HEIGHT_PX)


def _redis_dump(client) -> str:
    out = []
    for k in client.keys("*"):
        kind = client.type(k)
        value = {"string": lambda k: client.get(k), "hash": client.hgetall, "list": lambda k: client.lrange(k, 0, -1),
                 "set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
                 "stream": lambda k: client.xrange(k)}[kind](k)
        out.append(f"{k} {value}")
    return "\n".join(out)


def _db_dump(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return "\n".join(str(list(conn.execute(sa.select(t)))) for t in metadata.sorted_tables)


async def test_json_form_and_email_get_the_alert_with_its_chart_and_no_secret_leaks(
        redis_url, redis_client, engine, receiver, smtp, caplog):
    caplog.set_level(logging.DEBUG)
    port, inbox = smtp
    candles = sample_candles()
    alert = make_alert(0, t0=candles[-1].timestamp)
    mail = (f"mailto://{{SMTP_USER}}:{{SMTP_PASS}}@127.0.0.1:{port}?mode=insecure&from=alerts@livermore.test"
            "&to=desk@livermore.test")
    with engine.begin() as conn:
        for name, url in [("json", f"json://trader:{{JSON_PASS}}@127.0.0.1:{receiver.port}/json"),
                          ("form", f"form://127.0.0.1:{receiver.port}/form"), ("mail", mail),
                          ("broken", f"json://trader:{{JSON_PASS}}@127.0.0.1:{receiver.port}/broken")]:
            store.add_subscription(conn, store.add_destination(conn, name, url, ENV))
        hook = store.add_destination(conn, "hook", receiver.url("/hook?k={JSON_PASS}"), ENV, "HOOK_SECRET")
        store.add_subscription(conn, hook)
    receiver.status["/broken"] = 500

    async def go():
        r = aioredis.Redis.from_url(redis_url)
        await CandleStore(r).write_many(1, "BTC-USD", "1h", candles)
        await r.aclose()
        async with running(redis_url, engine, ENV, retry=RetryPolicy(max_attempts=2, base_s=0.05, cap_s=0.1)):
            publish(redis_client, [alert])
            await wait_until(lambda: receiver.accepted("/json") and receiver.accepted("/form") and inbox.messages
                             and receiver.accepted("/hook"), timeout=30, message="json, form, mail and webhook")
            await wait_until(lambda: redis_client.xlen(keys.NOTIFY_DEAD_STREAM) == 1, message="the broken one")

    await go()
    body = json.loads(receiver.accepted("/json")[0].body)
    assert body["title"] == "BTC-USD 1h: MACD-V crossed -200 (oversold)" and "MACD-V -212.5" in body["message"]
    (att,) = body["attachments"]
    assert att["mimetype"] == "image/png" and att["filename"] == "macd-v-BTC-USD-1h.png"
    _png(base64.b64decode(att["base64"]))
    form = receiver.accepted("/form")[0]
    assert b"crossed -200" in form.body and b"\x89PNG" in form.body
    assert form.headers["Content-Type"].startswith("multipart/form-data")
    msg = email.message_from_bytes(inbox.messages[0])
    assert "BTC-USD 1h" in msg["Subject"]
    pngs = [p.get_payload(decode=True) for p in msg.walk() if p.get_content_type() == "image/png"]
    assert len(pngs) == 1
    _png(pngs[0])
    dead = json.loads(redis_client.xrange(keys.NOTIFY_DEAD_STREAM)[0][1]["json"])
    assert dead["destination"] == "broken" and dead["reason"]

    # the secrets went where they belong (the SMTP login, the JSON endpoint's basic auth) and nowhere else
    assert receiver.accepted("/json")[0].headers["Authorization"] == \
        "Basic " + base64.b64encode(f"trader:{JSON_PASS}".encode()).decode()
    logs, dump, db = caplog.text, _redis_dump(redis_client), _db_dump(engine)
    assert "apprise" in logs and "notify:delivery:" in dump and "{SMTP_PASS}" in db
    for secret in SECRETS:
        assert secret not in logs, f"a secret reached the logs: {secret}"
        assert secret not in dump, f"a secret reached Redis: {secret}"
        assert secret not in db, f"a secret reached the database: {secret}"
