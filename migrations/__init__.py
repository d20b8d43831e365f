"""Alembic migrations of Livermore's relational schema (run with `livermore db upgrade`)."""
