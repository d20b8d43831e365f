"""`livermore --help` and a command's argument parsing stay light: the clients, the settings model
and the database layer are imported by the command that uses them, not to print help."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from streaming.cli import build_parser
parser = build_parser()
for argv in (["--help"], ["worker", "--help"], ["alerts", "--help"]):
    try:
        parser.parse_args(argv)
    except SystemExit:
        pass
heavy = ("pydantic", "pydantic_settings", "redis", "sqlalchemy", "websockets", "aiohttp", "numpy", "pandas",
         "dagster", "importlib.metadata")
print("HEAVY:" + ",".join(m for m in heavy if m in sys.modules))
"""


def test_help_imports_no_client_settings_model_or_database_layer():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    heavy = out.stdout.rsplit("HEAVY:", 1)[1].strip()
    assert heavy == "", f"imported for --help: {heavy}"
