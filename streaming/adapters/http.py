"""A thin shared REST client: rate limited, retries transient failures, maps throttling.

Failures are classified (streaming.adapters.failures). Retried: a refused connection, timeouts,
5xx, 429 (after Retry-After) and 418 (hard backoff). Not retried: a name that does not resolve,
TLS errors, HTTP 451 and a public request's 401/403: retrying cannot fix them. Either kind, once
final, raises ExchangeUnavailable naming the cause and what to do, and opens the client's
breaker: for COOL_DOWN_S every further request fails at once with the same error instead of
asking again (a warm-up of hundreds of requests learns in a moment what the first one learned).
Rate limiting never opens it. Other statuses are returned to the exchange-specific caller, which
maps them to UnknownSymbolError / AuthError. Nothing here logs a header or a query (they carry
secrets).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AdapterError, RateLimitedError
from streaming.adapters.failures import Failure, from_exception, from_status

log = logging.getLogger(__name__)

# (method, path, params) -> (params or an encoded query string, headers) for this attempt:
# signatures and JWTs are made per request
Signer = Callable[[str, str, dict[str, Any]], tuple[dict[str, Any] | str, dict[str, str]]]
Throttle = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


COOL_DOWN_S = 30.0  # how long an unavailable exchange is not asked again


class TransportError(AdapterError):
    """The exchange could not be reached or kept failing after retries."""


class ExchangeUnavailable(TransportError):
    """The exchange cannot serve us now: `failure` says why and what to do."""

    def __init__(self, name: str, failure: Failure) -> None:
        super().__init__(f"{name}: {failure}")
        self.failure = failure


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class HttpClient:
    def __init__(self, base_url: str, name: str, *, throttle: Throttle | None = None,
                 on_response: Callable[[Response], None] | None = None, max_retries: int = 5,
                 timeout: float = 15.0, max_wait: float = 120.0, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._throttle = throttle
        self._on_response = on_response
        self._max_retries = max_retries
        self._timeout = timeout
        self._max_wait = max_wait
        self._backoff_proto = backoff
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock
        self._down: tuple[float, ExchangeUnavailable] | None = None  # (until, the error) while open
        self.counts: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0, "refused_fast": 0}
        # endpoint (a path, ids left out) -> [requests sent, answers 429/418]
        self.by_endpoint: dict[str, list[int]] = {}

    @property
    def unavailable(self) -> ExchangeUnavailable | None:
        """The error every request gets right now (the breaker is open), else None."""
        if self._down is not None and self._clock() < self._down[0]:
            return self._down[1]
        return None

    def _trip(self, failure: Failure) -> ExchangeUnavailable:
        error = ExchangeUnavailable(self.name, failure)
        self._down = (self._clock() + COOL_DOWN_S, error)
        log.warning("%s: %s (not asking again for %.0fs)", self.name, error, COOL_DOWN_S)
        return error

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, params: Mapping[str, Any] | None = None, *,
                      cost: int = 1, sign: Signer | None = None, endpoint: str | None = None) -> Response:
        """`endpoint`: how the request is counted (default `path`; give it when the path carries an id)."""
        down = self.unavailable
        if down is not None:
            self.counts["refused_fast"] += 1
            raise ExchangeUnavailable(self.name, down.failure)
        backoff = Backoff(0.2, 8.0) if self._backoff_proto is None else self._backoff_proto.fresh()
        session = await self._get_session()
        tally = self.by_endpoint.get(endpoint or path)
        if tally is None:
            tally = self.by_endpoint[endpoint or path] = [0, 0]
        last: Failure | None = None
        rate_limited = ""
        for attempt in range(self._max_retries + 1):
            if self._throttle is not None:
                await self._throttle(cost)
            plain: dict[str, Any] = dict(params or {})
            query: dict[str, Any] | str = plain
            headers: dict[str, str] = {}
            if sign is not None:
                query, headers = sign(method, path, dict(plain))
            url = self.base_url + path
            if isinstance(query, str):  # signed: send exactly the bytes that were signed
                url, query = f"{url}?{query}", {}
            self.counts["requests"] += 1
            tally[0] += 1
            try:
                async with session.request(method, url, params=query or None, headers=headers) as resp:
                    body = await resp.read()
                    response = Response(resp.status, dict(resp.headers), body)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last, rate_limited = from_exception(exc, self.name, self.base_url), ""
                if last.permanent:
                    raise self._trip(last) from None
                delay = backoff.next_delay()
            else:
                if self._on_response is not None:
                    self._on_response(response)
                status = response.status
                if status == 429 or status == 418:
                    self.counts["throttled"] += 1
                    tally[1] += 1
                    # 418 = IP banned for repeated violations: never retry sooner than a minute
                    default = 60.0 if status == 418 else backoff.next_delay()
                    delay = _retry_after(response.headers, default)
                    if status == 418:
                        delay = max(delay, 60.0)
                    rate_limited = f"HTTP {status}"
                    if delay > self._max_wait:
                        raise RateLimitedError(
                            f"{self.name}: rate limited (HTTP {status}), retry after {delay:.0f}s",
                            retry_after=delay)
                else:
                    failure = from_status(status, self.name, signed=sign is not None)
                    if failure is None:
                        self._down = None  # an answer: the exchange is there
                        return response
                    if failure.permanent:
                        raise self._trip(failure)
                    last, rate_limited = failure, ""
                    delay = backoff.next_delay()
            if attempt == self._max_retries:
                break
            self.counts["retries"] += 1
            log.info("%s: %s %s failed (%s), retry %d in %.2fs", self.name, method, path,
                     rate_limited or (last.cause if last else "?"), attempt + 1, delay)
            await asyncio.sleep(delay)
        if rate_limited:
            raise RateLimitedError(f"{self.name}: still rate limited after {self._max_retries} retries")
        assert last is not None
        raise self._trip(Failure(f"{last.cause}, {self._max_retries + 1} attempts", last.advice, False))
