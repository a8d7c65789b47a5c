"""Seed throughput: 10,000 listings (median of 3) and, with --large, 1,000,000 listings.

Each run seeds a fresh database on the configured server (DATABASE_URL, or the embedded
one), so runs are independent. Prints figures; docs/PERFORMANCE.md records them.

    .venv/bin/python bench/seed_bench.py [--large]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg
from psycopg import sql

from carsearch.config import Settings
from carsearch.db import migrate
from carsearch.db.engine import create_sync_engine, libpq_dsn, resolve_database_url
from carsearch.seed.service import seed_inventory


def seed_fresh_database(listings: int) -> tuple[float, float]:
    """Returns (migrate seconds, seed seconds) on a new database, dropped afterwards."""
    server = resolve_database_url(Settings())
    name = f"carsearch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.set(database=name)
    try:
        engine = create_sync_engine(url)
        started = time.perf_counter()
        migrate.upgrade(engine)
        migrated = time.perf_counter() - started
        engine.dispose()
        started = time.perf_counter()
        seed_inventory(libpq_dsn(url), listings=listings, seed=42)
        return migrated, time.perf_counter() - started
    finally:
        with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", action="store_true", help="also seed 1,000,000 listings")
    args = parser.parse_args()
    small = [seed_fresh_database(10_000) for _ in range(3)]
    print(
        f"migrate to head: median {statistics.median(m for m, _ in small):.2f} s; "
        f"seed 10,000 listings: median {statistics.median(s for _, s in small):.1f} s "
        f"(runs: {', '.join(f'{s:.1f}' for _, s in small)})"
    )
    if args.large:
        _, seconds = seed_fresh_database(1_000_000)
        print(f"seed 1,000,000 listings: {seconds:.0f} s ({1_000_000 / seconds:,.0f} listings/s)")


if __name__ == "__main__":
    main()
