"""What every sender returns, and the one place a destination row becomes a sender."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from streaming.notify import envref
from streaming.notify.destinations import Destination
from streaming.notify.events import AlertEvent


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str = ""  # one line, secrets already blanked out
    retry_after: float | None = None  # the service asked us to wait (HTTP 429 Retry-After)


class Sender(Protocol):
    wants_chart: bool

    async def send(self, alerts: Sequence[AlertEvent], digest: bool, chart: bytes | None) -> SendResult: ...

    async def aclose(self) -> None: ...


def secrets_of(dest: Destination, env: Mapping[str, str]) -> list[str]:
    """The values behind the destination's variables that are set (to blank them out of text)."""
    return [env[n] for n in dest.variables() if env.get(n)]


def build_sender(dest: Destination, env: Mapping[str, str], redact: envref.Redactor,
                 clock: Callable[[], float], webhook_timeout_s: float = 3.0) -> Sender:
    """A sender for `dest`; envref.MissingVariable if a variable it names is unset."""
    url = envref.render(dest.url, env)
    redact.add(secrets_of(dest, env))
    if dest.kind == "webhook":
        from streaming.notify.webhook import WebhookSender

        secret = envref.resolve([dest.secret_env], env)[dest.secret_env] if dest.secret_env else ""
        return WebhookSender(url, secret.encode(), redact, clock, timeout_s=webhook_timeout_s)
    from streaming.notify.apprise_dest import AppriseSender

    return AppriseSender(url, redact, charts=dest.charts)
