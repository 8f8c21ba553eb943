"""Alembic migrations for Teller's schema; run them through `db.migrate`."""
