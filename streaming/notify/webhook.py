"""Generic webhooks: the alert JSON, signed with HMAC-SHA256, POSTed with a 3 s timeout.

Body (JSON): {"kind": "alert"|"digest", "count": n, "alerts": [alert, ...]}: one alert, or a digest
of the alerts a rate limit held back; each alert has the fields of stream:alerts. Headers:
  X-Livermore-Timestamp: unix seconds of the send
  X-Livermore-Signature: sha256=HEX, HMAC-SHA256 with the destination's secret over
                         "{timestamp}." + body (the raw bytes)
  X-Livermore-Delivery:  the alert id, or "digest:" + a hash of the ids: the same on a retry,
                         so a receiver can drop a repeat
`verify_signature` is what a receiver runs (docs/alert-delivery.md has it standalone).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

import aiohttp
import msgspec

from streaming.notify.envref import Redactor
from streaming.notify.events import AlertEvent
from streaming.notify.sending import SendResult

SIGNATURE_HEADER = "X-Livermore-Signature"
TIMESTAMP_HEADER = "X-Livermore-Timestamp"
DELIVERY_HEADER = "X-Livermore-Delivery"


class WebhookBody(msgspec.Struct, frozen=True):
    kind: str  # alert | digest
    count: int
    alerts: list[AlertEvent]


_encode = msgspec.json.Encoder().encode
decode_body = msgspec.json.Decoder(WebhookBody).decode


def body(alerts: Sequence[AlertEvent], digest: bool) -> bytes:
    return _encode(WebhookBody("digest" if digest else "alert", len(alerts), list(alerts)))


def delivery_id(alerts: Sequence[AlertEvent], digest: bool) -> str:
    if not digest:
        return alerts[0].id
    h = hashlib.sha256("\n".join(sorted(a.id for a in alerts)).encode()).hexdigest()[:24]
    return f"digest:{h}"


def sign(secret: bytes, timestamp: int, payload: bytes) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_signature(secret: bytes, timestamp: str | None, payload: bytes, signature: str | None,
                     now: float, tolerance_s: float = 300.0) -> bool:
    """True if `signature` is ours over `payload` and `timestamp` is within `tolerance_s` of now
    (an old, replayed request fails)."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, payload), signature)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: the backoff applies


class WebhookSender:
    wants_chart = False

    def __init__(self, url: str, secret: bytes, redact: Redactor, clock: Callable[[], float],
                 timeout_s: float = 3.0) -> None:
        self._url = url
        self._secret = secret
        self._redact = redact
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, alerts: Sequence[AlertEvent], digest: bool, chart: bytes | None = None) -> SendResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        payload = body(alerts, digest)
        ts = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "livermore-notify",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self._secret, ts, payload),
            DELIVERY_HEADER: delivery_id(alerts, digest),
        }
        try:
            async with self._session.post(self._url, data=payload, headers=headers, allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    return SendResult(True)
                return SendResult(False, f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                  _retry_after(resp.headers.get("Retry-After")) if resp.status in (429, 503) else None)
        except TimeoutError:
            return SendResult(False, f"no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as exc:
            return SendResult(False, self._redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
