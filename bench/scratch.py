"""A fresh, migrated database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from carsearch.config import Settings
from carsearch.db import migrate
from carsearch.db.engine import create_sync_engine, libpq_dsn, resolve_database_url


@contextmanager
def scratch_database() -> Iterator[str]:
    """Yields the libpq DSN of a new database on the configured server, at head."""
    server = resolve_database_url(Settings())
    name = f"carsearch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.set(database=name)
    try:
        engine = create_sync_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield libpq_dsn(url)
    finally:
        with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
