"""Redis replies as text, whether the client was made with decode_responses or not."""

from __future__ import annotations

from collections.abc import Mapping


def as_str(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def str_hash(raw: Mapping[str | bytes, str | bytes]) -> dict[str, str]:
    """An HGETALL reply with str keys and values."""
    return {as_str(k): as_str(v) for k, v in raw.items()}
