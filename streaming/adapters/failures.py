"""Why an exchange cannot be reached, in words a person can act on (pure: no I/O).

REST (streaming.adapters.http) and WebSocket connects (streaming.adapters.reconnect) fail with
the same few causes; each becomes a Failure: what happened, what to do, and whether retrying can
fix it. Permanent: the name does not resolve, TLS fails, the exchange refuses this client or this
country (HTTP 401/403 on a public request, 451). Transient: a refused connection, a timeout, a
server error (5xx): retried, and reported as the cause once the retries are used up.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from websockets.exceptions import InvalidStatus

# what an exchange's 451 means for its users, and where to go instead
_GEO_ADVICE = {
    "binance": "use binance_us if you are in the United States, or run Livermore from a country Binance serves",
    "binance_us": "Binance.US serves the United States only: use binance or coinbase from elsewhere",
    "coinbase": "run Livermore from a country Coinbase Advanced Trade serves",
}


@dataclass(frozen=True)
class Failure:
    cause: str  # one line: what happened
    advice: str  # what to do about it
    permanent: bool  # retrying the same request cannot fix it

    def __str__(self) -> str:
        return f"{self.cause}; {self.advice}" if self.advice else self.cause


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


def _url_setting(exchange: str, url: str) -> str:
    kind = "WS" if url.startswith(("ws:", "wss:")) else "REST"
    return f"LIVERMORE_{exchange.upper()}_{kind}_URL"


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (aiohttp keeps the OSError in os_error, others chain it)."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out and len(out) < 8:
        out.append(current)
        wrapped = getattr(current, "os_error", None)
        current = wrapped if isinstance(wrapped, BaseException) else (current.__cause__ or current.__context__)
    return out


def _text(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:160]


def from_status(status: int, exchange: str, *, signed: bool = False) -> Failure | None:
    """An HTTP status that says the exchange will not serve us; None for the statuses the caller
    maps itself (2xx, 4xx about one request, a signed request's 401/403: bad credentials)."""
    if status == 451:
        return Failure(f"{exchange} refuses this country (HTTP 451, unavailable for legal reasons)",
                       _GEO_ADVICE.get(exchange, "run Livermore from a country the exchange serves"), True)
    if status in (401, 403) and not signed:
        return Failure(f"{exchange} refuses this client (HTTP {status} to a public request)",
                       "the exchange or a firewall blocks this IP address or location; try another network", True)
    if status >= 500:
        return Failure(f"{exchange} answers HTTP {status} (server error)",
                       "the exchange's API is failing; check its status page, Livermore retries", False)
    return None


def from_exception(exc: BaseException, exchange: str, url: str) -> Failure:
    """The cause of a failed connect or request, named for a person."""
    host, name = _host(url), urlsplit(url).hostname or _host(url)
    setting = _url_setting(exchange, url)
    for item in _chain(exc):
        if isinstance(item, InvalidStatus):
            found = from_status(item.response.status_code, exchange)
            if found is not None:
                return found
            return Failure(f"{exchange} answered the WebSocket handshake with HTTP {item.response.status_code}",
                           f"check {setting}", False)
        if isinstance(item, aiohttp.ClientConnectorDNSError | socket.gaierror):
            return Failure(f"cannot resolve {name} (DNS: {_text(item)})",
                           f"check the network connection (offline?) and {setting}", True)
        if isinstance(item, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
            return Failure(f"the TLS certificate of {name} is not trusted ({_text(item)})",
                           "check the system clock and CA certificates, or a proxy intercepting HTTPS", True)
        if isinstance(item, aiohttp.ClientSSLError | ssl.SSLError):
            return Failure(f"TLS with {name} failed ({_text(item)})",
                           "check the system clock and CA certificates, or a proxy intercepting HTTPS", True)
        if isinstance(item, ConnectionRefusedError):
            return Failure(f"connection refused by {host} (ConnectionRefusedError)",
                           f"nothing listens there: check {setting}, a firewall or a proxy", False)
        if isinstance(item, TimeoutError):
            return Failure(f"no answer from {name} in time (timeout)", "check the network connection", False)
    return Failure(f"{type(exc).__name__}: {_text(exc)} ({host})", "check the network connection", False)
