"""Binance signed endpoints: HMAC-SHA256 of the query string, API key in X-MBX-APIKEY."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from streaming.adapters.base import Credentials


def signed_query(params: dict[str, Any], secret: str, now_ms: int | None = None,
                 recv_window: int = 5000) -> dict[str, Any]:
    """`params` plus timestamp, recvWindow and the hex signature of exactly that query string."""
    query = dict(params)
    query["recvWindow"] = recv_window
    query["timestamp"] = int(time.time() * 1000) if now_ms is None else now_ms
    payload = urlencode(query)
    query["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return query


def signer(credentials: Credentials) -> Callable[[str, str, dict[str, Any]], tuple[str, dict[str, str]]]:
    def sign(method: str, path: str, params: dict[str, Any]) -> tuple[str, dict[str, str]]:
        # the encoded string is sent as is: re-encoding by the HTTP client could break the signature
        return urlencode(signed_query(params, credentials.api_secret)), {"X-MBX-APIKEY": credentials.api_key}
    return sign
