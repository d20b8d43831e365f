"""The one way Livermore opens a Redis connection, synchronous or asyncio.

Every client gets the same behaviour: a bounded connect time, retries with jittered exponential
backoff on connection errors and timeouts (so a Redis restart on the same port is a pause, not a
crash), TCP keepalive and a health check of connections idle for `health_check_s`. Blocking reads
(XREAD BLOCK, pub/sub) need `timeout=None`, the default; quick probes pass a short `timeout`.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

CONNECT_TIMEOUT_S = 5.0
RETRIES = 5
HEALTH_CHECK_S = 30
_RETRY_ON = (redis.ConnectionError, redis.TimeoutError)


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(cap=2.0, base=0.05)


def _options(decode: bool, timeout: float | None, connect_timeout: float, health_check_s: int) -> dict[str, Any]:
    """What sync_client and async_client configure alike (all but the Retry class)."""
    return {"decode_responses": decode, "socket_timeout": timeout,
            "socket_connect_timeout": min(connect_timeout, timeout) if timeout else connect_timeout,
            "socket_keepalive": True, "health_check_interval": health_check_s}


def sync_client(url: str, *, decode: bool = True, timeout: float | None = None,
                connect_timeout: float = CONNECT_TIMEOUT_S, retries: int = RETRIES,
                health_check_s: int = HEALTH_CHECK_S) -> redis.Redis:
    """A redis-py client for `url` (which may carry a password: never log it, see settings.mask_url)."""
    return redis.Redis.from_url(url, **_options(decode, timeout, connect_timeout, health_check_s),
                                retry=Retry(_backoff(), retries, supported_errors=_RETRY_ON))


def async_client(url: str, *, decode: bool = True, timeout: float | None = None,
                 connect_timeout: float = CONNECT_TIMEOUT_S, retries: int = RETRIES,
                 health_check_s: int = HEALTH_CHECK_S) -> aioredis.Redis:
    """The asyncio counterpart of sync_client, configured the same way."""
    return aioredis.Redis.from_url(url, **_options(decode, timeout, connect_timeout, health_check_s),
                                   retry=AsyncRetry(_backoff(), retries, supported_errors=_RETRY_ON))
