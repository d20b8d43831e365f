"""A thin shared REST client: rate limited, retries transient failures, maps throttling.

Retried: connection errors, timeouts, 5xx, 429 (after Retry-After) and 418 (hard backoff).
Other statuses are returned to the exchange-specific caller, which maps them to
UnknownSymbolError / AuthError. Nothing here logs a header or a query (they carry secrets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AdapterError, RateLimitedError

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


class TransportError(AdapterError):
    """The exchange could not be reached or kept failing after retries."""


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


class HttpClient:
    def __init__(self, base_url: str, name: str, *, throttle: Throttle | None = None,
                 on_response: Callable[[Response], None] | None = None, max_retries: int = 5,
                 timeout: float = 15.0, max_wait: float = 120.0, backoff: Backoff | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name
        self._throttle = throttle
        self._on_response = on_response
        self._max_retries = max_retries
        self._timeout = timeout
        self._max_wait = max_wait
        self._backoff_proto = backoff
        self._session: aiohttp.ClientSession | None = None
        self.counts: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0}

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, params: Mapping[str, Any] | None = None, *,
                      cost: int = 1, sign: Signer | None = None) -> Response:
        backoff = Backoff(0.2, 8.0) if self._backoff_proto is None else self._backoff_proto.fresh()
        session = await self._get_session()
        last_problem = ""
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
            try:
                async with session.request(method, url, params=query or None, headers=headers) as resp:
                    body = await resp.read()
                    response = Response(resp.status, dict(resp.headers), body)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                last_problem = f"{type(exc).__name__}"
                delay = backoff.next_delay()
            else:
                if self._on_response is not None:
                    self._on_response(response)
                status = response.status
                if status == 429 or status == 418:
                    self.counts["throttled"] += 1
                    # 418 = IP banned for repeated violations: never retry sooner than a minute
                    default = 60.0 if status == 418 else backoff.next_delay()
                    delay = _retry_after(response.headers, default)
                    if status == 418:
                        delay = max(delay, 60.0)
                    last_problem = f"HTTP {status}"
                    if delay > self._max_wait:
                        raise RateLimitedError(
                            f"{self.name}: rate limited (HTTP {status}), retry after {delay:.0f}s",
                            retry_after=delay)
                elif status >= 500:
                    last_problem = f"HTTP {status}"
                    delay = backoff.next_delay()
                else:
                    return response
            if attempt == self._max_retries:
                break
            self.counts["retries"] += 1
            log.info("%s: %s %s failed (%s), retry %d in %.2fs", self.name, method, path, last_problem,
                     attempt + 1, delay)
            await asyncio.sleep(delay)
        if last_problem.startswith("HTTP 429") or last_problem.startswith("HTTP 418"):
            raise RateLimitedError(f"{self.name}: still rate limited after {self._max_retries} retries")
        raise TransportError(f"{self.name}: {method} {path} failed after {self._max_retries + 1} attempts "
                             f"({last_problem}); check that {self.base_url} is reachable")
