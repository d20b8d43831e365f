"""docs/keyspace.md is generated from streaming/keys.py and the contracts, and is current."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from streaming import keys
from streaming.contracts.docs import CONTROL, DAGSTER, MARKET, NOTIFY, render

ROOT = Path(__file__).resolve().parents[2]
NOT_KEYS = {"validate_symbol", "candle_close_pattern"}  # a check and a PSUBSCRIBE pattern, no key of their own


def test_committed_page_is_current():
    committed = (ROOT / "docs" / "keyspace.md").read_text()
    assert committed == render(), ("docs/keyspace.md is not what the contracts say: run "
                                   "`python -m streaming.contracts.docs > docs/keyspace.md` and commit it")


def key_names_in_keys_py() -> list[str]:
    """Every key and channel name streaming.keys can build, its variable parts as `\\x00`."""
    names = []
    for name, value in vars(keys).items():
        if name.startswith("_") or name in NOT_KEYS:
            continue
        if inspect.isfunction(value) and value.__module__ == keys.__name__:
            names.append(value(*["\x00"] * len(inspect.signature(value).parameters)))
        elif isinstance(value, str) and name.isupper():
            names.append(value)
    return names


def test_every_key_of_keys_py_is_documented():
    documented = [k.name for k in (*MARKET, *DAGSTER, *CONTROL, *NOTIFY)]
    missing = []
    for name in key_names_in_keys_py():
        pattern = re.compile("^" + re.escape(name).replace("\x00", r"\{[^}]+\}") + "$")
        if not any(pattern.match(d) for d in documented):
            missing.append(name.replace("\x00", "{...}"))
    assert missing == [], f"keys built in streaming/keys.py but missing from docs/keyspace.md: {missing}"
    assert len(key_names_in_keys_py()) >= 20
