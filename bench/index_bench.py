"""Search index rebuild time: seeds a fresh database with N listings, then rebuilds the
index from it (median of --runs rebuilds). Then the incremental sync after a change to 10%
of the listings: the passes that follow within the 2-minute overlap window, without and
with a follower's memory of what it indexed. Prints figures; docs/PERFORMANCE.md records
them.

    .venv/bin/python bench/index_bench.py --listings 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from carsearch.search.indexer import SyncMemory, rebuild_index, sync_index
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
            overlap_passes(store, dsn, args.runs)


def overlap_passes(store: IndexStore, dsn: str, runs: int) -> None:
    with psycopg.connect(dsn) as conn:
        changed = conn.execute(
            "UPDATE listings SET price = price + 1 WHERE price IS NOT NULL AND id %% 10 = %s",
            (0,),
        ).rowcount
    for name, memory in (("without memory", None), ("with memory", SyncMemory())):
        sync_index(store, dsn, memory)  # the pass that takes the change in
        started = time.perf_counter()
        seconds, indexed = [], []
        for _ in range(runs):
            began = time.perf_counter()
            indexed.append(sync_index(store, dsn, memory).indexed)
            seconds.append(time.perf_counter() - began)
        assert time.perf_counter() - started < 100, "left the overlap window: use fewer runs"
        print(
            f"sync pass after {changed:,} changes, {name}: median "
            f"{statistics.median(seconds):.2f} s, indexed {indexed}"
        )


if __name__ == "__main__":
    main()
