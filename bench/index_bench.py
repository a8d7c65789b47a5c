"""Search index rebuild time: seeds a fresh database with N listings, then rebuilds the
index from it (median of --runs rebuilds). Prints figures; docs/PERFORMANCE.md records them.

    .venv/bin/python bench/index_bench.py --listings 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from carsearch.search.indexer import rebuild_index
from carsearch.search.store import IndexStore
from carsearch.seed.service import seed_inventory
from scratch import scratch_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with scratch_database() as dsn:
        started = time.perf_counter()
        seed_inventory(dsn, listings=args.listings, seed=42)
        print(f"seeded {args.listings:,} listings in {time.perf_counter() - started:.0f} s")
        timings = []
        with tempfile.TemporaryDirectory() as directory:
            store = IndexStore(Path(directory))
            for _ in range(args.runs):
                timings.append(rebuild_index(store, dsn).seconds)
        print(
            f"rebuild {args.listings:,} listings: median {statistics.median(timings):.1f} s "
            f"(runs: {', '.join(f'{t:.1f}' for t in timings)})"
        )


if __name__ == "__main__":
    main()
