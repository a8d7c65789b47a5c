"""Search latency in the server: p50/p95/p99 of searches, facets, detail and history.

Seeds a kept database of --listings listings on first use (reused later), rebuilds its
index (timed: the rebuild figure), then sends a fixed mix of varied requests through the
whole ASGI app in this process (routing, validation, search, serialization; no network),
with the response cache off so every search is computed. A trivial endpoint (/healthz)
timed in the same run is the baseline. Each figure is the median over --runs passes.

    .venv/bin/python bench/search_bench.py --listings 10000
    .venv/bin/python bench/search_bench.py --listings 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from httpx import ASGITransport, AsyncClient

from carsearch.app import create_app
from carsearch.config import Settings
from carsearch.search.indexer import rebuild_index
from carsearch.search.schemas import FACET_FIELDS
from carsearch.search.store import IndexStore
from scratch import kept_database

# Big-city ZIPs: where radius searches come from.
ZIPS = ["10001", "90012", "60601", "77002", "85004", "19103", "78205", "92101", "75201", "94103"]
BODY_STYLES = ["suv", "sedan", "pickup", "hatchback", "coupe", "minivan"]
ALL_FACETS = ",".join(FACET_FIELDS)


def search_mix(
    makes: list[tuple[str, list[str]]], rng: random.Random, n: int
) -> list[dict[str, Any]]:
    """Varied searches of the kinds shoppers run, from broad to narrow."""
    queries: list[dict[str, Any]] = []
    for i in range(n):
        make, models = rng.choice(makes)
        model = rng.choice(models) if models else None
        kind = i % 6
        if kind == 0:
            params: dict[str, Any] = {"make": make}
        elif kind == 1:
            params = {"make": make, "model": model, "year_min": rng.randint(2012, 2022)}
        elif kind == 2:
            params = {
                "body_style": rng.choice(BODY_STYLES),
                "price_max": rng.choice([15_000, 25_000, 40_000]),
                "sort": "price_asc",
            }
        elif kind == 3:
            params = {"q": f"{make} {model or ''}".strip().lower()}
        elif kind == 4:
            params = {
                "zip": rng.choice(ZIPS),
                "radius": rng.choice([25, 50, 100, 200]),
                "sort": rng.choice(["distance", "price_asc", "newest"]),
            }
        else:
            params = {
                "condition": rng.choice(["used", "cpo"]),
                "mileage_max": rng.choice([30_000, 60_000, 100_000]),
                "drivetrain": rng.choice(["awd", "fwd", "4wd"]),
                "page": rng.randint(1, 5),
            }
        queries.append({k: v for k, v in params.items() if v is not None})
    return queries


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


async def timed(client: AsyncClient, url: str, params: dict[str, Any] | None = None) -> float:
    started = time.perf_counter()
    response = await client.get(url, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url} {params}: {response.status_code} {response.text[:300]}")
    return elapsed


async def measure(dsn: str, index_dir: Path, runs: int, requests: int) -> None:
    settings = Settings(
        database_url=dsn,
        search_index_dir=index_dir,
        search_cache_ttl_seconds=0,  # every search computed: uncached figures
        redis_url=None,
        rate_limit_enabled=False,
    )
    app = create_app(settings)
    rng = random.Random(7)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT vin FROM listings ORDER BY random() LIMIT 1000").fetchall()
    vins = [row[0] for row in rows]
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as client,
    ):
        options = (await client.get("/api/v1/filters")).json()["data"]
        makes = [(m["name"], [x["name"] for x in m["models"]]) for m in options["makes"]]
        searches = search_mix(makes, rng, requests)
        paging = ("sort", "page")
        filters_only = [{k: v for k, v in s.items() if k not in paging} for s in searches]
        cases: dict[str, Callable[[int], Any]] = {
            "healthz (baseline)": lambda i: timed(client, "/healthz"),
            "search": lambda i: timed(client, "/api/v1/listings", searches[i]),
            "search + all facets": lambda i: timed(
                client, "/api/v1/listings", {**searches[i], "facets": ALL_FACETS}
            ),
            "facets endpoint": lambda i: timed(client, "/api/v1/facets", filters_only[i]),
            "detail": lambda i: timed(client, f"/api/v1/listings/{vins[i % len(vins)]}"),
            "history": lambda i: timed(client, f"/api/v1/listings/{vins[i % len(vins)]}/history"),
        }
        for i in range(min(200, requests)):  # warm caches of the OS, PostgreSQL and tantivy
            for case in cases.values():
                await case(i)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in cases}
        for _ in range(runs):
            for name, case in cases.items():
                samples = [await case(i) for i in range(requests)]
                results[name].append(percentiles(samples))
    print(f"{'request':<22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}", end="")
    print(f"   (median of {runs} passes of {requests} requests)")
    for name, figures in results.items():
        p50, p95, p99 = (statistics.median(f[k] for f in figures) for k in range(3))
        print(f"{name:<22}{p50:>9.2f}{p95:>9.2f}{p99:>9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3, help="passes; figures are their median")
    parser.add_argument("--requests", type=int, default=600, help="requests per kind per pass")
    parser.add_argument(
        "--reuse-index", action="store_true", help="skip the rebuild when the index exists"
    )
    args = parser.parse_args()
    dsn = kept_database(args.listings)
    index_dir = Path("var") / f"bench-index-{args.listings}"
    store = IndexStore(index_dir)
    if not (args.reuse_index and store.exists()):
        report = rebuild_index(store, dsn)
        print(f"rebuilt the index of {report.documents:,} listings in {report.seconds:.1f} s")
    asyncio.run(measure(dsn, index_dir, args.runs, args.requests))


if __name__ == "__main__":
    main()
