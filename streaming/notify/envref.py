"""Secrets by environment variable NAME, never by value.

A destination URL is stored as a template: `discord://{DISCORD_HOOK_ID}/{DISCORD_HOOK_TOKEN}`,
or a whole URL from one variable, `{DISCORD_URL}`. The values are read from the environment of
the process that sends, when it sends; the database, Redis and every log line only ever hold the
names. `Redactor` blanks the values out of any text that might echo them (error messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")
MASK = "***"


class MissingVariable(ValueError):
    """A referenced environment variable is unset or empty; the message names it, never a value."""


def check_env_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name (letters, digits and _, "
                         "not starting with a digit)")
    return name


def variables(template: str) -> list[str]:
    """The variable names a template references, in order of first appearance."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def resolve(names: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    """name -> value for each name; MissingVariable lists every unset or empty one."""
    names = list(dict.fromkeys(names))
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise MissingVariable(f"environment variable{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)} {'are' if len(missing) > 1 else 'is'} not set")
    return {n: env[n] for n in names}


def render(template: str, env: Mapping[str, str]) -> str:
    """The template with every `{NAME}` replaced by its value (MissingVariable if one is unset)."""
    values = resolve(variables(template), env)
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


class Redactor:
    """Replaces known secret values in text with ***. Longest first, so a value containing
    another is blanked whole."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        # URL-quoted too: a library may log the URL it built from the value
        merged = set(self._secrets) | {v for s in secrets if s for v in (s, quote(s, safe=""))}
        self._secrets = sorted(merged, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for s in self._secrets:
            if s in text:
                text = text.replace(s, MASK)
        return text
