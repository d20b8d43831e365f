"""Coinbase Advanced Trade API-key auth: one ES256 JWT per request (CDP keys)."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from streaming.adapters.base import AuthError, Credentials


def load_key(credentials: Credentials) -> ec.EllipticCurvePrivateKey:
    # env vars often carry the PEM with literal "\n"
    pem = credentials.api_secret.replace("\\n", "\n").strip().encode()
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise AuthError("Coinbase api_secret is not a PEM private key: use the EC private key "
                        "(-----BEGIN EC PRIVATE KEY-----) of a CDP API key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AuthError("Coinbase api_secret must be an EC (ES256) private key")
    return key


def build_jwt(key_name: str, key: ec.EllipticCurvePrivateKey, method: str, host: str, path: str,
              now: float | None = None) -> str:
    """JWT for one request; `uri` is "<METHOD> <host><path>" without the query string."""
    issued = int(time.time() if now is None else now)
    claims = {"sub": key_name, "iss": "cdp", "nbf": issued, "exp": issued + 120,
              "uri": f"{method.upper()} {host}{path}"}
    headers = {"kid": key_name, "nonce": secrets.token_hex(16)}
    return jwt.encode(claims, key, algorithm="ES256", headers=headers)


def host_of(rest_url: str) -> str:
    return urlsplit(rest_url).netloc
