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


def kept_database(listings: int, seed: int = 42) -> str:
    """A database of `listings` seeded listings that outlives the run (the 1,000,000-listing
    benchmarks share one: seeding it takes minutes). Seeds it on first use; returns its DSN.
    `DROP DATABASE carsearch_bench_keep_<listings>` removes it."""
    from carsearch.seed.service import seed_inventory

    server = resolve_database_url(Settings())
    name = f"carsearch_bench_keep_{listings}"
    url = server.set(database=name)
    with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = create_sync_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    dsn = libpq_dsn(url)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM listings").fetchone()
    if not row or row[0] != listings:
        print(f"seeding {listings:,} listings into {name} (kept for later runs)...", flush=True)
        seed_inventory(dsn, listings=listings, seed=seed, reset=True)
    return dsn
