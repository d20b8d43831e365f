"""A setting that must never be printed (a URL with a password): shown masked, read on purpose only.

    url = Secret("redis://:hunter2@host:6379/0")
    str(url), repr(url)        # '**********', "Secret('**********')": safe in logs, errors and reprs
    url.get_secret_value()     # the URL itself, where a client needs it
"""

from __future__ import annotations

MASK = "**********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash(self._value)
