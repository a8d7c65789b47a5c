"""Search index rebuild time: seeds a fresh database with N listings, then rebuilds the
index from it (median of --runs rebuilds). Prints figures; docs/PERFORMANCE.md records them.

    .venv/bin/python bench/index_bench.py --listings 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

from carsearch.config import Settings
from carsearch.db import migrate
from carsearch.db.engine import create_sync_engine, libpq_dsn, resolve_database_url
from carsearch.search.indexer import rebuild_index
from carsearch.search.store import IndexStore
from carsearch.seed.service import seed_inventory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = resolve_database_url(Settings())
    name = f"carsearch_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = server.set(database=name)
    try:
        engine = create_sync_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        dsn = libpq_dsn(url)
        started = time.perf_counter()
        seed_inventory(dsn, listings=args.listings, seed=42)
        print(f"seeded {args.listings:,} listings in {time.perf_counter() - started:.0f} s")
        timings = []
        with tempfile.TemporaryDirectory() as directory:
            store = IndexStore(Path(directory))
            for _ in range(args.runs):
                report = rebuild_index(store, dsn)
                timings.append(report.seconds)
        print(
            f"rebuild {args.listings:,} listings: median {statistics.median(timings):.1f} s "
            f"(runs: {', '.join(f'{t:.1f}' for t in timings)})"
        )
    finally:
        with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
