"""One module per schema change. Alembic skips this file."""
