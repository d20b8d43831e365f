"""Chat and e-mail services through Apprise (Discord, Telegram, Slack, e-mail and ~100 more).

One Apprise object per destination, built from the URL rendered with the secrets of this
process's environment. Messages fit the service's own size limit (digest.py); the chart goes as a
PNG attachment where the service takes attachments. Apprise's log lines pass through a filter that
blanks every secret value this process knows before any handler sees them.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from streaming.notify import digest as text
from streaming.notify.destinations import apprise_plugin
from streaming.notify.envref import Redactor
from streaming.notify.events import AlertEvent
from streaming.notify.sending import SendResult

APPRISE_TIMEOUT_S = 30.0  # uploads (a chart to Telegram, SMTP) take longer than a webhook POST


class _RedactFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self.redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


# Apprise logs under one logger; the HTTP library under it logs request lines at DEBUG.
# (A logger's filters see only its own records, so each is named.)
THIRD_PARTY_LOGGERS = ("apprise", "urllib3.connectionpool")


def install_log_redaction(redact: Redactor) -> None:
    """Blank every secret `redact` knows out of the third-party loggers' records."""
    for name in THIRD_PARTY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactFilter) and f.redact is redact for f in logger.filters):
            logger.addFilter(_RedactFilter(redact))


class AppriseSender:
    def __init__(self, url: str, redact: Redactor, charts: bool = True,
                 timeout_s: float = APPRISE_TIMEOUT_S) -> None:
        import apprise

        install_log_redaction(redact)
        self._redact = redact
        self._timeout = timeout_s
        plugin = apprise_plugin(url)
        if plugin is None:
            raise ValueError("not a URL Apprise accepts")
        self._apobj = apprise.Apprise()
        self._apobj.add(plugin)
        self.wants_chart = bool(charts and plugin.attachment_support)
        self.service = plugin.service_name
        # the title counts against the body limit on some services: keep room for it
        self.max_chars = max(200, min(int(plugin.body_maxlen or 4000), 30_000) - 120)

    def render(self, alerts: Sequence[AlertEvent], digest: bool) -> tuple[str, str]:
        if digest or len(alerts) > 1:
            return text.digest_title(alerts), text.digest_text(alerts, self.max_chars)
        return text.alert_title(alerts[0]), text.alert_text(alerts[0])

    async def send(self, alerts: Sequence[AlertEvent], digest: bool, chart: bytes | None = None) -> SendResult:
        import apprise

        title, body = self.render(alerts, digest)
        # a file, not an in-memory attachment: several plugins (form://, Slack, ntfy...) open
        # attachments by path
        with tempfile.TemporaryDirectory(prefix="livermore-chart-") as tmp:
            attach = None
            if chart is not None and self.wants_chart:
                path = Path(tmp) / f"macd-v-{alerts[0].symbol.replace('/', '_')}-{alerts[0].timeframe}.png"
                path.write_bytes(chart)
                attach = apprise.AppriseAttachment(str(path))
            try:
                result = await self._apobj.async_notify(body=body, title=title, attach=attach, timeout=self._timeout)
            except Exception as exc:  # a plugin bug must not take the destination's loop down
                return SendResult(False, self._redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
        if result:
            return SendResult(True)
        reason = ""
        for entry in result.logs():
            if entry.level in ("WARNING", "ERROR", "CRITICAL"):
                reason = entry.message
        reason = reason or f"{self.service} refused the message ({result.status.name.lower()})"
        return SendResult(False, self._redact(reason.splitlines()[0] if reason else reason)[:300])

    async def aclose(self) -> None:
        self._apobj.clear()
