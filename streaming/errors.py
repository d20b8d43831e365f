"""Errors a user can act on. The message says what is wrong and what to do."""

from __future__ import annotations

import re

# ANSI/VT escape sequences and every other control character: a message echoes what a user (or a
# hostile caller) typed, and must not move the cursor, recolour the terminal or add lines
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x1f\x7f-\x9f]")


class UsageError(Exception):
    """Bad settings, bad arguments, an unreachable server: printed as one line, exit code 2."""


def printable(text: str) -> str:
    """`text` without escape sequences; other control characters (newlines too) become '?'."""
    return _ESCAPES.sub(lambda m: "?" if len(m.group()) == 1 else "", text)


def shown(value: object, limit: int = 60) -> str:
    """A user's value as an error message quotes it: printable, in quotes, cut to `limit` characters."""
    text = printable(str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"'{text}'"


def one_line(message: str, limit: int = 400) -> str:
    """The last line of defence before a message reaches a terminal: printable, one line, bounded."""
    text = printable(message)
    return text if len(text) <= limit else text[: limit - 1] + "…"
