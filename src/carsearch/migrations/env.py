from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.schema import SchemaItem

import carsearch.models  # noqa: F401  (registers every table on Base.metadata)
from carsearch.config import get_settings
from carsearch.db.base import Base
from carsearch.db.engine import create_sync_engine, resolve_database_url

config = context.config


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The job queue's tables belong to procrastinate; its own schema file manages them.
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def _include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return _include_name(name, type_, None)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_name=_include_name,
        include_object=_include_object,
        compare_type=True,
        transaction_per_migration=True,
    )


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_sync_engine(resolve_database_url(get_settings()))
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")
run_migrations()
