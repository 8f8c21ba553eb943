"""Alembic environment for Teller.

Run migrations through `db.migrate` (or `teller migrate`), which opens the connection,
holds the transaction and hands the connection in as `config.attributes["connection"]`.
There is no alembic.ini and no offline (`--sql`) mode.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

import db.models  # noqa: F401  (defines every table on Base.metadata)
from db.base import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    # Migrations must not import application code: spell our column types in plain
    # SQLAlchemy so an old migration keeps working when models.py changes.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online() -> None:
    """Run the migrations on the connection (and inside the transaction) of `db.migrate`."""
    connection = config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run Teller's migrations with db.migrate (teller migrate)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        render_item=_render_item,
        compare_type=True,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; use db.migrate")
run_migrations_online()
