"""Checking credentials the way the exchanges do: Coinbase ES256 JWTs, Binance HMAC signatures. Pure."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

MAX_JWT_LIFETIME = 300  # seconds between nbf and exp the simulator tolerates (Coinbase issues 120)


def verify_coinbase_jwt(token: str, public_key: ec.EllipticCurvePublicKey, key_name: str, method: str,
                        hosts: tuple[str, ...], path: str, now: float) -> str | None:
    """None when the JWT authorises `method path`, else why not (never echoing the token)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return "malformed JWT"
    if header.get("alg") != "ES256":
        return f"JWT alg must be ES256, got {header.get('alg')!r}"
    if header.get("kid") != key_name:
        return "JWT kid is not a known API key name"
    try:
        claims: dict[str, Any] = jwt.decode(
            token, public_key, algorithms=["ES256"], leeway=5,
            options={"require": ["sub", "iss", "nbf", "exp", "uri"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        return "JWT expired"
    except jwt.ImmatureSignatureError:
        return "JWT not yet valid (nbf in the future)"
    except jwt.InvalidSignatureError:
        return "JWT signature does not verify with the API key"
    except jwt.PyJWTError as exc:
        return f"invalid JWT: {exc}"
    if claims.get("sub") != key_name:
        return "JWT sub is not the API key name"
    if claims.get("iss") != "cdp":
        return "JWT iss must be 'cdp'"
    try:
        lifetime = float(claims["exp"]) - float(claims["nbf"])
    except (TypeError, ValueError):
        return "JWT exp/nbf must be numbers"
    if lifetime > MAX_JWT_LIFETIME:
        return f"JWT lifetime {lifetime:.0f}s exceeds {MAX_JWT_LIFETIME}s"
    wanted = {f"{method.upper()} {host}{path}" for host in hosts}
    if claims.get("uri") not in wanted:
        return f"JWT uri {claims.get('uri')!r} does not match this request ({method.upper()} <host>{path})"
    return None


def split_signature(raw_query: str) -> tuple[str, str | None]:
    """(signed payload, signature) of a Binance query string; the payload is every other parameter,
    in the order sent."""
    parts = raw_query.split("&") if raw_query else []
    signature = None
    kept = []
    for part in parts:
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept), signature


def binance_signature(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify_binance_signature(secret: str, payload: str, signature: str) -> bool:
    return hmac.compare_digest(binance_signature(secret, payload), signature.lower())
