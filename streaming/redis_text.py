"""Redis replies as text, whether the client was made with decode_responses or not.

Bytes that are not UTF-8 become U+FFFD rather than an exception: a reader of shared state
must not crash on what another process wrote.
"""

from __future__ import annotations

from collections.abc import Mapping


def as_str(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def str_hash(raw: Mapping[str | bytes, str | bytes]) -> dict[str, str]:
    """An HGETALL reply with str keys and values."""
    return {as_str(k): as_str(v) for k, v in raw.items()}
