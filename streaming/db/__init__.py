"""The relational store: schema (SQLAlchemy Core), engine, migrations and seed data."""
