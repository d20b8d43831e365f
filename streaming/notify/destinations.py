"""Destinations: where alerts go, how fast they may go there, and the checks a new one must pass.

Two kinds: `webhook` (http/https: Livermore's signed JSON, see webhook.py) and `apprise` (any
Apprise URL: discord://, tgram://, slack://, mailto://, json://, form://, ...; also the native
https URLs Apprise recognises, e.g. a Discord webhook URL). The stored URL is a template whose
secrets are `{VARIABLE}` names (envref); the checks below refuse a URL that carries a secret in
plain text, an unknown scheme, or a variable that is not set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import msgspec

from streaming.notify import envref

KINDS = ("webhook", "apprise")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_URL = 2000


class InvalidDestination(ValueError):
    """One line saying what is wrong with a destination and what to do."""


class RateLimit(msgspec.Struct, frozen=True):
    """At most `count` messages in any `window_s` seconds."""

    count: int
    window_s: float

    def __str__(self) -> str:
        return f"{self.count}/{self.window_s:g}s"


# Documented limits of each service (docs/alert-delivery.md cites them). Telegram: about one message
# per second per chat; Discord webhooks: 5 requests per 2 s; Slack incoming webhooks: one per
# second. E-mail has no per-second limit worth the name: 6 a minute is Livermore's own bound so a
# storm becomes digests instead of a full inbox. Other chat services: one a second, to be safe.
SERVICE_LIMITS: dict[str, RateLimit] = {
    "discord": RateLimit(5, 2.0),
    "tgram": RateLimit(1, 1.0),
    "slack": RateLimit(1, 1.0),
    "mailto": RateLimit(6, 60.0),
    "mailtos": RateLimit(6, 60.0),
}
CHAT_DEFAULT = RateLimit(1, 1.0)
# generic HTTP endpoints (ours and Apprise's json/form/xml) have no limit unless one is set
UNLIMITED_SCHEMES = frozenset({"http", "https", "json", "jsons", "form", "forms", "xml", "xmls"})


def parse_rate(text: str) -> RateLimit:
    """`5/2s`, `5/2`, `1/1s`, `60/60s`: COUNT messages per SECONDS."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", text or "")
    if not m or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
        raise InvalidDestination(f"rate {text!r} is invalid; write COUNT/SECONDS, e.g. 5/2s (5 messages per 2 s)")
    count, window = int(m.group(1)), float(m.group(2))
    if count > 10_000 or window > 86_400:
        raise InvalidDestination(f"rate {text!r} is out of range (at most 10000 messages, windows up to 86400 s)")
    return RateLimit(count, window)


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def default_limit(kind: str, scheme: str) -> RateLimit | None:
    if kind == "webhook" or scheme in UNLIMITED_SCHEMES:
        return None
    return SERVICE_LIMITS.get(scheme, CHAT_DEFAULT)


class Destination(msgspec.Struct, frozen=True):
    id: int
    name: str
    kind: str  # webhook | apprise
    url: str  # template: {VARIABLE} names, never values
    secret_env: str | None = None  # webhook: the variable holding the HMAC secret
    rate: RateLimit | None = None  # None: the service's default (default_limit)
    charts: bool = True  # attach the MACD-V chart where the service takes images

    @property
    def scheme(self) -> str:
        return scheme_of(self.url)

    def rate_limit(self) -> RateLimit | None:
        return self.rate if self.rate is not None else default_limit(self.kind, self.scheme)

    def variables(self) -> list[str]:
        names = envref.variables(self.url)
        return [*names, self.secret_env] if self.secret_env else names

    def display_url(self) -> str:
        """Safe to print: Apprise templates as stored (secrets are {NAMES}); a webhook as its
        scheme and host only, since nothing proves its path holds no token."""
        if self.kind == "apprise" or envref.variables(self.url) == [self.url.strip("{}")]:
            return self.url
        parts = urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        rest = "/..." if parts.path.strip("/") or parts.query else ""
        return f"{parts.scheme}://{host}{rest}"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidDestination(f"destination name {name!r} is invalid; use up to 64 letters, digits, '.', '_' "
                                 "or '-', starting with a letter or digit")
    return name


@contextmanager
def quiet_apprise() -> Iterator[None]:
    """Apprise logs an URL it cannot parse, secrets and all: checking one must not."""
    logger = logging.getLogger("apprise")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def apprise_plugin(url: str) -> Any:
    """The Apprise plugin for a rendered URL, or None if Apprise does not accept it."""
    import apprise

    with quiet_apprise():
        return apprise.Apprise.instantiate(url)


def service_scheme(url: str) -> str:
    """The scheme of the service a rendered URL reaches: Apprise's name for it (`discord` for a
    native `https://discord.com/api/webhooks/...` URL too), else the URL's own scheme."""
    plugin = apprise_plugin(url)
    names: list[str] = []
    for attr in ("secure_protocol", "protocol"):
        value = getattr(plugin, attr, None)
        names += [value] if isinstance(value, str) else [v for v in value or () if isinstance(v, str)]
    known = [n for n in names if n in SERVICE_LIMITS or n in UNLIMITED_SCHEMES]
    return (known or names or [scheme_of(url)])[0]


def stored_default(template: str, kind: str, env: Mapping[str, str]) -> RateLimit | None:
    """The limit to keep with a new destination given no rate of its own. None when the stored
    template's scheme already names the service (its default then applies everywhere); the
    service's documented limit when only the rendered URL shows it (a whole URL in one variable,
    a native https URL of the service): kept with the destination, so every process applies it,
    also one without the variables."""
    if kind != "apprise":
        return None
    actual = default_limit(kind, service_scheme(envref.render(template, env)))
    return actual if actual is not None and actual != default_limit(kind, scheme_of(template)) else None


def classify(template: str, secret_env: str | None, env: Mapping[str, str]) -> str:
    """The kind of a new destination's URL, or InvalidDestination with the reason."""
    if not template or len(template) > MAX_URL:
        raise InvalidDestination(f"the URL must be 1 to {MAX_URL} characters")
    try:
        url = envref.render(template, env)
        if secret_env is not None:
            envref.resolve([envref.check_env_name(secret_env)], env)
    except envref.MissingVariable as exc:
        raise InvalidDestination(f"{exc}; export it here (and where `livermore notify` runs) first") from None
    except ValueError as exc:
        raise InvalidDestination(str(exc)) from None
    scheme = scheme_of(url)
    if not scheme:
        raise InvalidDestination("the URL has no scheme; use https://... for a webhook or an Apprise URL such as "
                                 "discord://..., tgram://..., mailto://...")
    plugin = apprise_plugin(url)
    if scheme in ("http", "https") and plugin is None:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise InvalidDestination(f"the webhook URL is invalid ({exc})") from None
        if not parts.hostname:
            raise InvalidDestination("the webhook URL names no host")
        if urlsplit(template).password and not envref.variables(urlsplit(template).password or ""):
            raise InvalidDestination("the URL holds a password in plain text; put it in an environment variable "
                                     "and write {NAME} in its place")
        if secret_env is None:
            raise InvalidDestination("a webhook needs --secret-env NAME: the variable holding its HMAC-SHA256 "
                                     "signing secret")
        return "webhook"
    if plugin is None:
        raise InvalidDestination(f"{scheme}:// is not a URL Apprise accepts (unknown service or missing parts); "
                                 "see the Apprise wiki for the service's URL format")
    if secret_env is not None:
        raise InvalidDestination("--secret-env is for webhooks; an Apprise URL takes its secrets as {NAME} "
                                 "placeholders")
    if plugin.url(privacy=True) != plugin.url(privacy=False) and not envref.variables(template):
        raise InvalidDestination("the URL holds a token or password in plain text; put it in an environment "
                                 "variable and write {NAME} in its place")
    return "apprise"
