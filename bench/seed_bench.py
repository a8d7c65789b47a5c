"""Seed throughput: 10,000 listings (median of 3) and, with --large, 1,000,000 listings.

Each run seeds a fresh database on the configured server (DATABASE_URL, or the embedded
one), so runs are independent. Prints figures; docs/PERFORMANCE.md records them.

    .venv/bin/python bench/seed_bench.py [--large]
"""

from __future__ import annotations

import argparse
import statistics
import time

from carsearch.seed.service import seed_inventory
from scratch import scratch_database


def seed_fresh_database(listings: int) -> float:
    """Seconds to seed `listings` into a new database."""
    with scratch_database() as dsn:
        started = time.perf_counter()
        seed_inventory(dsn, listings=listings, seed=42)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", action="store_true", help="also seed 1,000,000 listings")
    args = parser.parse_args()
    small = [seed_fresh_database(10_000) for _ in range(3)]
    print(
        f"seed 10,000 listings: median {statistics.median(small):.1f} s "
        f"(runs: {', '.join(f'{s:.1f}' for s in small)})"
    )
    if args.large:
        seconds = seed_fresh_database(1_000_000)
        print(f"seed 1,000,000 listings: {seconds:.0f} s ({1_000_000 / seconds:,.0f} listings/s)")


if __name__ == "__main__":
    main()
