"""The REST client names why an exchange cannot be reached and stops asking when asking cannot help:
real HTTP servers on 127.0.0.1 (451, 503, 401, 429), a closed port, and the classification of
the errors a connect can end with."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from aiohttp import web
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import RateLimitedError
from streaming.adapters.failures import from_exception, from_status
from streaming.adapters.http import COOL_DOWN_S, ExchangeUnavailable, HttpClient
from streaming.redis_server import free_port
from tests.helpers.http_server import serve_all

FAST = Backoff(0.01, 0.02)


class Server:
    """An HTTP server answering every request with `status`; counts the requests."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.headers = headers or {}
        self.requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(status=self.status, text='{"msg": "no"}', headers=self.headers)

    async def __aenter__(self) -> Server:
        self._runner, port = await serve_all(self._answer)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_451_is_not_retried_names_the_cause_and_the_next_requests_fail_at_once():
    async with Server(451) as server:
        client = HttpClient(server.url, "binance", backoff=FAST)
        try:
            with pytest.raises(ExchangeUnavailable) as first:
                await client.request("GET", "/api/v3/klines")
            assert server.requests == 1  # retrying cannot fix it
            text = str(first.value)
            assert "HTTP 451" in text and "refuses this country" in text and "binance_us" in text
            assert first.value.failure.permanent
            for _ in range(50):
                with pytest.raises(ExchangeUnavailable) as again:
                    await client.request("GET", "/api/v3/klines")
                assert str(again.value) == text
            assert server.requests == 1 and client.counts["refused_fast"] == 50
        finally:
            await client.close()


async def test_a_closed_port_is_retried_then_reported_as_refused():
    port = free_port()
    client = HttpClient(f"http://127.0.0.1:{port}", "coinbase", backoff=FAST, max_retries=3)
    try:
        with pytest.raises(ExchangeUnavailable) as err:
            await client.request("GET", "/products")
        text = str(err.value)
        assert "connection refused by 127.0.0.1" in text and "4 attempts" in text
        assert "LIVERMORE_COINBASE_REST_URL" in text
        assert client.counts["requests"] == 4
        started = time.monotonic()
        with pytest.raises(ExchangeUnavailable):
            await client.request("GET", "/products")
        assert client.counts["requests"] == 4 and time.monotonic() - started < 0.5
    finally:
        await client.close()


async def test_repeated_5xx_is_reported_after_the_retries_and_the_breaker_closes_after_the_cool_down():
    clock = Clock()
    async with Server(503) as server:
        client = HttpClient(server.url, "coinbase", backoff=FAST, max_retries=2, clock=clock)
        try:
            with pytest.raises(ExchangeUnavailable) as err:
                await client.request("GET", "/products")
            assert server.requests == 3
            assert "HTTP 503" in str(err.value) and "3 attempts" in str(err.value)
            assert not err.value.failure.permanent
            with pytest.raises(ExchangeUnavailable):
                await client.request("GET", "/products")
            assert server.requests == 3
            clock.now += COOL_DOWN_S + 1  # asked again after the cool-down; an answer closes the breaker
            server.status = 200
            assert (await client.request("GET", "/products")).status == 200
            assert client.unavailable is None and server.requests == 4
        finally:
            await client.close()


async def test_a_signed_401_goes_back_to_the_caller_and_opens_nothing():
    async with Server(401) as server:
        client = HttpClient(server.url, "binance", backoff=FAST)
        try:
            resp = await client.request("GET", "/api/v3/account", sign=lambda m, p, q: (q, {"X-KEY": "k"}))
            assert resp.status == 401 and client.unavailable is None  # bad credentials: AuthError upstream
            server.status = 403
            with pytest.raises(ExchangeUnavailable) as public:  # a public request refused: the client is
                await client.request("GET", "/api/v3/klines")
            assert "HTTP 403" in str(public.value) and "blocks this IP address" in str(public.value)
        finally:
            await client.close()


async def test_rate_limiting_keeps_its_own_handling_and_never_opens_the_breaker():
    async with Server(429, {"Retry-After": "0"}) as server:
        client = HttpClient(server.url, "binance", backoff=FAST, max_retries=2)
        try:
            with pytest.raises(RateLimitedError, match="still rate limited"):
                await client.request("GET", "/api/v3/klines")
            assert client.unavailable is None and client.counts["throttled"] == 3
            server.headers = {"Retry-After": "600"}
            with pytest.raises(RateLimitedError, match="retry after 600s"):
                await client.request("GET", "/api/v3/klines")
            assert client.unavailable is None
        finally:
            await client.close()


def _handshake(status: int) -> InvalidStatus:
    return InvalidStatus(Response(status, "x", Headers()))


@pytest.mark.parametrize(("exc", "words", "permanent"), [
    (socket.gaierror(-2, "Name or service not known"), "cannot resolve api.binance.com (DNS", True),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS certificate of api.binance.com", True),
    (ssl.SSLError(1, "wrong version number"), "TLS with api.binance.com failed", True),
    (ConnectionRefusedError(111, "Connect call failed"), "connection refused by api.binance.com", False),
    (TimeoutError(), "no answer from api.binance.com", False),
    (_handshake(451), "refuses this country (HTTP 451", True),
    (_handshake(403), "refuses this client (HTTP 403", True),
    (_handshake(502), "answers HTTP 502", False),
    (_handshake(404), "handshake with HTTP 404", False),
])
def test_connect_failures_are_named_with_what_to_do(exc, words, permanent):
    failure = from_exception(exc, "binance", "wss://api.binance.com:443/stream")
    assert words in failure.cause and failure.permanent is permanent
    assert failure.advice and "\n" not in str(failure)


def test_wrapped_causes_are_found():
    try:
        try:
            raise socket.gaierror(-3, "Temporary failure in name resolution")
        except OSError as inner:
            raise OSError("connect failed") from inner
    except OSError as outer:
        failure = from_exception(outer, "coinbase", "https://api.coinbase.com")
    assert failure.permanent and "DNS" in failure.cause and "LIVERMORE_COINBASE_REST_URL" in failure.advice


def test_statuses_the_caller_maps_are_left_to_it():
    assert from_status(404, "coinbase") is None and from_status(400, "binance") is None
    assert from_status(401, "coinbase", signed=True) is None
    assert from_status(451, "kraken") is not None
