"""Appraisal accuracy: 100,000 seeded listings in memory, appraised held out.

The seed generator knows each car's value before the asking-price noise (`true_value`),
so the estimate can be scored against it. With --database, also the stored path: the
same number of listings seeded into a scratch database, `appraise_market` on all of them
(first and unchanged), and `appraise_stale` after 100 price changes; medians of --runs.

    .venv/bin/python bench/appraisal_bench.py [--listings N] [--seed S] [--database]
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

from carsearch.appraisal.estimator import Appraisal, Comparable, appraise_all, rating_for_percent
from carsearch.seed.generator import InventoryGenerator, SeedListing, dealer_count
from carsearch.seed.reference import load_reference

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def seeded_listings(count: int, seed: int) -> list[SeedListing]:
    generator = InventoryGenerator(
        load_reference(),
        seed=seed,
        now=NOW,
        first_dealer_id=1,
        first_listing_id=1,
        taken_vins=set(),
    )
    dealers = generator.dealers(dealer_count(count))
    return list(generator.listings(count, dealers))


def as_comparable(listing: SeedListing) -> Comparable:
    return Comparable(
        listing_id=listing.id,
        make=listing.make,
        model=listing.model,
        trim=listing.trim,
        year=listing.year,
        mileage=listing.mileage,
        condition=listing.condition.value,
        price=listing.price,
        status=listing.status.value,
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", action="store_true", help="also time the stored path")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--baseline-sample", type=int, default=10_000, help="listings the k-NN baseline scores"
    )
    args = parser.parse_args()

    started = time.perf_counter()
    seeded = seeded_listings(args.listings, args.seed)
    generated = time.perf_counter() - started
    comparables = [as_comparable(listing) for listing in seeded]
    started = time.perf_counter()
    appraisals = appraise_all(comparables, current_year=NOW.year)
    appraised = time.perf_counter() - started

    errors: list[float] = []
    errors_by_condition: dict[str, list[float]] = {"new": [], "used": [], "cpo": []}
    tiers_agree = 0
    reasons: Counter[str] = Counter()
    for listing in seeded:
        appraisal = appraisals[listing.id]
        if appraisal.rating == "none":
            reasons[appraisal.reason or "?"] += 1
            continue
        assert appraisal.estimate is not None
        assert listing.price is not None
        error = abs(appraisal.estimate - listing.true_value) / listing.true_value * 100
        errors.append(error)
        errors_by_condition[listing.condition.value].append(error)
        true_percent = (listing.price - listing.true_value) / listing.true_value * 100
        tiers_agree += rating_for_percent(true_percent) == appraisal.rating

    rated = len(errors)
    print(f"listings: {len(seeded):,} (generated in {generated:.1f} s)")
    print(f"appraise_all: {appraised:.1f} s")
    print(f"rated: {rated / len(seeded):.1%}; none by reason: {dict(sorted(reasons.items()))}")
    print(
        f"abs % error vs true value (held out): median {statistics.median(errors):.2f}%, "
        f"p90 {percentile(errors, 0.9):.2f}%"
    )
    for condition, values in errors_by_condition.items():
        if values:
            print(f"  {condition}: n={len(values):,} median {statistics.median(values):.2f}%")
    print(f"tier from estimate = tier from true value: {tiers_agree / rated:.1%}")
    nearest_neighbours_baseline(seeded, appraisals, args.baseline_sample)
    if args.database:
        stored_path(args.listings, args.seed, args.runs)


def knn_estimate(listing: SeedListing, group: list[SeedListing], k: int = 10) -> float | None:
    """The baseline: the median price of the k nearest comparables by model year, log
    mileage and trim (new cars against new cars), the listing itself left out."""
    is_new = listing.condition.value == "new"
    log_miles = math.log1p(listing.mileage)
    candidates = [
        (
            abs(other.year - listing.year)
            + (0.0 if is_new else 2 * abs(math.log1p(other.mileage) - log_miles))
            + (other.trim != listing.trim),
            other.price,
        )
        for other in group
        if other.id != listing.id
        and other.price
        and other.status.value in ("active", "sold")
        and (other.condition.value == "new") == is_new
    ]
    if len(candidates) < k:
        return None
    return statistics.median(price for _, price in heapq.nsmallest(k, candidates))


def nearest_neighbours_baseline(
    seeded: list[SeedListing], appraisals: dict[int, Appraisal], sample: int
) -> None:
    groups: dict[tuple[str, str], list[SeedListing]] = defaultdict(list)
    for listing in seeded:
        groups[(listing.make, listing.model)].append(listing)
    scored = [
        listing
        for listing in random.Random(7).sample(seeded, min(sample, len(seeded)))
        if appraisals[listing.id].rating != "none"
    ]
    started = time.perf_counter()
    knn_errors: list[float] = []
    fit_errors: list[float] = []
    for listing in scored:
        estimate = knn_estimate(listing, groups[(listing.make, listing.model)])
        appraised = appraisals[listing.id].estimate
        if estimate is None or appraised is None:
            continue
        knn_errors.append(abs(estimate - listing.true_value) / listing.true_value * 100)
        fit_errors.append(abs(appraised - listing.true_value) / listing.true_value * 100)
    seconds = time.perf_counter() - started
    fit, knn = statistics.median(fit_errors), statistics.median(knn_errors)
    print(
        f"baseline, median of 10 nearest neighbours, on the same {len(knn_errors):,} listings "
        f"({seconds:.1f} s): median error {knn:.2f}% (p90 {percentile(knn_errors, 0.9):.2f}%) "
        f"against the fit's {fit:.2f}% (p90 {percentile(fit_errors, 0.9):.2f}%): "
        f"{knn / fit:.1f}x the error"
    )


def stored_path(listings: int, seed: int, runs: int) -> None:
    import psycopg

    from carsearch.appraisal.service import appraise_market, appraise_stale
    from carsearch.seed.service import seed_inventory
    from scratch import scratch_database

    with scratch_database() as dsn:
        seed_inventory(dsn, listings=listings, seed=seed, now=NOW)
        first = appraise_market(dsn, now=NOW)
        print(
            f"appraise_market, empty table: {first.seconds:.1f} s "
            f"({first.listings:,} active listings, {first.changed:,} written)"
        )
        again = [appraise_market(dsn, now=NOW).seconds for _ in range(runs)]
        print(f"appraise_market, nothing changed: median {statistics.median(again):.1f} s")
        stale: list[float] = []
        for run in range(runs):
            with psycopg.connect(dsn) as conn:
                conn.execute(
                    "UPDATE listings SET price = price - 100 - %s WHERE id IN (SELECT id FROM"
                    " listings WHERE status = 'active' AND price > 1000 ORDER BY id LIMIT 100"
                    " OFFSET %s)",
                    (run, run * 1_000),
                )
            report = appraise_stale(dsn, now=NOW)
            stale.append(report.seconds)
        print(
            f"appraise_stale after 100 price changes: median {statistics.median(stale):.2f} s "
            f"({report.models} models, {report.listings:,} listings re-fitted)"
        )
        # A day of market churn: 2% of active listings cut their price 3%, 2% sell.
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "UPDATE listings SET price = (price * 0.97)::int WHERE status = 'active'"
                " AND price IS NOT NULL AND id %% 50 = %s",
                (1,),
            )
            conn.execute(
                "UPDATE listings SET status = 'sold', sold_at = %s WHERE status = 'active'"
                " AND id %% 50 = 2",
                (NOW,),
            )
        daily = appraise_market(dsn, now=NOW)
        print(
            f"daily appraise_market after a day's churn (2% price cuts, 2% sold): "
            f"{daily.seconds:.1f} s; {daily.changed:,} of {daily.listings:,} appraisals "
            f"changed what search shows ({daily.changed / daily.listings:.1%} re-indexed)"
        )


if __name__ == "__main__":
    main()
