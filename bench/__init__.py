"""Benchmarks (run as scripts: `.venv/bin/python bench/<name>.py`; see docs/benchmarks.md)."""
