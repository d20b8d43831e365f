"""Every LIVERMORE_* variable is a field of the one settings object, and docs/configuration.md,
generated from it, is current."""

from __future__ import annotations

import re
from pathlib import Path

from streaming import settings_doc
from streaming.settings import FIELDS, variable

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"\bLIVERMORE_[A-Z][A-Z_]*[A-Z]\b")


def test_configuration_page_is_current():
    page = settings_doc.PAGE.read_text()
    assert page == settings_doc.render(page), "run `python -m streaming.settings_doc` and commit docs/configuration.md"
    for name in FIELDS:
        assert f"`{variable(name)}`" in page


def test_every_variable_the_code_names_is_a_setting():
    fields = {variable(name) for name in FIELDS}
    unknown = set()
    for package in ("streaming", "livermore_pipelines"):
        for path in (ROOT / package).rglob("*.py"):
            unknown |= {f"{m.group(0)} ({path.relative_to(ROOT)})" for m in VARIABLE.finditer(path.read_text())
                        if m.group(0) not in fields}
    assert unknown == set(), "read a variable that is not a field of LivermoreSettings"


def test_the_checker_notices_a_stale_page():
    stale = f"x\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\ny\n"
    assert settings_doc.render(stale) != stale
    assert settings_doc.render(settings_doc.render(stale)) == settings_doc.render(stale)
