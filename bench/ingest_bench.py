"""Ingestion speed: parsing pages (per core) and storing listings (the pipeline's upsert).

Parsing: the recorded cars.com detail and results pages, parsed over and over in this one
process (one core). Storing: generated listings in pages of 24 (a 2026 results page) into
a scratch database through the pipeline's connection, first as new listings, then the same
pages again (every listing unchanged), then again with every price changed. The database
already holds 10,000 seeded listings (analyzed). Figures are medians of --runs.

    .venv/bin/python bench/ingest_bench.py [--listings 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from carsearch.dealers.geo import zip_centroid
from carsearch.ingest import carscom
from carsearch.ingest.normalize import Catalog, NormalizedListing, normalize_listing
from carsearch.ingest.pipeline import RunCounts, store_page
from carsearch.ingest.records import ScrapedDealer, ScrapedListing
from carsearch.ingest.service import ingest_connection
from carsearch.listings.vin import with_check_digit
from carsearch.seed.service import seed_inventory
from scratch import scratch_database

PAGES = Path(__file__).parents[1] / "src" / "carsearch" / "ingest" / "demo_pages"
DETAIL_PAGES = ("vdp_2026-05_dealer_used.html", "vdp_2025-08_private_seller.html")
RESULTS_PAGES = ("srp_2026-05.html", "srp_2025-09_used_19102.html")
PAGE_SIZE = 24


def pages_per_second(names: tuple[str, ...], parse: object, seconds: float = 3.0) -> float:
    texts = [(PAGES / name).read_text() for name in names]
    parsed = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for text in texts:
            parse(text)  # type: ignore[operator]
            parsed += 1
    return parsed / (time.perf_counter() - started)


def generated_listings(count: int, catalog: Catalog) -> list[NormalizedListing]:
    rng = random.Random(5)
    makes = [("Toyota", "Camry"), ("Honda", "Civic"), ("Ford", "F-150"), ("Subaru", "Outback")]
    listings = []
    for serial in range(count):
        make, model = makes[serial % len(makes)]
        raw = ScrapedListing(
            source="bench",
            source_listing_id=f"bench-{serial}",
            url=f"https://example.org/vehicledetail/bench-{serial}/",
            vin=with_check_digit(f"1HGCM82633A{serial:06d}"),
            price=rng.randint(4_000, 60_000),
            mileage=rng.randint(5, 150_000),
            year=2003,
            make=make,
            model=model,
            trim="LX",
            condition="used",
            exterior_color="Crystal Black Pearl",
            body_style="Sedan",
            drivetrain="Front-wheel Drive",
            fuel_type="Gasoline",
            dealer=ScrapedDealer(
                source_dealer_id=f"dealer-{serial % 300}",
                name=f"Bench Motors {serial % 300}",
                city="Austin",
                state="TX",
                zip="78701",
            ),
        )
        normalized = normalize_listing(raw, catalog)
        assert isinstance(normalized, NormalizedListing), normalized
        listings.append(normalized)
    return listings


def store_all(dsn: str, listings: list[NormalizedListing]) -> tuple[float, RunCounts]:
    counts = RunCounts()
    zip_centroid("78701")  # the ZIP table loads once per process: not part of the figure
    with ingest_connection(dsn) as conn:
        started = time.perf_counter()
        now = datetime.now(UTC)
        for start in range(0, len(listings), PAGE_SIZE):
            store_page(conn, listings[start : start + PAGE_SIZE], {}, counts, now)
        return len(listings) / (time.perf_counter() - started), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    detail = [pages_per_second(DETAIL_PAGES, carscom.parse_detail_page) for _ in range(args.runs)]
    results = [
        pages_per_second(RESULTS_PAGES, carscom.parse_search_results) for _ in range(args.runs)
    ]
    print(f"parse detail pages:  {statistics.median(detail):7.0f} pages/s on one core")
    print(f"parse results pages: {statistics.median(results):7.0f} pages/s on one core")

    catalog = Catalog.from_packaged()
    listings = generated_listings(args.listings, catalog)
    figures: dict[str, list[float]] = {"new": [], "unchanged": [], "price changed": []}
    for _ in range(args.runs):
        with scratch_database() as dsn:
            # A database that already holds listings, analyzed, as any running one does.
            # (On an empty, never analyzed table PostgreSQL plans foreign-key checks as
            # scans, and every new row scans all the others: see the note in
            # docs/PERFORMANCE.md.)
            seed_inventory(dsn, listings=10_000, seed=1)
            rate, counts = store_all(dsn, listings)
            assert counts.listings_new == len(listings)
            figures["new"].append(rate)
            rate, counts = store_all(dsn, listings)
            assert counts.listings_unchanged == len(listings)
            figures["unchanged"].append(rate)
            repriced = [replace(item, price=(item.price or 0) + 100) for item in listings]
            rate, counts = store_all(dsn, repriced)
            assert counts.price_changes == len(listings)
            figures["price changed"].append(rate)
    for name, rates in figures.items():
        runs = ", ".join(f"{rate:.0f}" for rate in rates)
        print(
            f"store {args.listings:,} listings, {name:<13} {statistics.median(rates):7.0f}"
            f" listings/s  (runs: {runs})"
        )


if __name__ == "__main__":
    main()
