"""Databases of a test's own on the test server: created, optionally migrated, dropped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from carsearch.db import migrate
from carsearch.db.engine import create_sync_engine, libpq_dsn


def create_database(
    server_url: URL, prefix: str = "carsearch_test", *, migrated: bool = False
) -> URL:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_dsn(server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server_url.set(database=name)
    if migrated:
        engine = create_sync_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    return url


def drop_database(server_url: URL, url: URL) -> None:
    with psycopg.connect(libpq_dsn(server_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(url.database))
        )


@contextmanager
def migrated_database(server_url: URL, prefix: str) -> Iterator[str]:
    """A database at the latest migration for the block; yields its libpq DSN."""
    url = create_database(server_url, prefix, migrated=True)
    try:
        yield libpq_dsn(url)
    finally:
        drop_database(server_url, url)
