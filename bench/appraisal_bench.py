"""Appraisal accuracy: 100,000 seeded listings in memory, appraised held out.

The seed generator knows each car's value before the asking-price noise (`true_value`),
so the estimate can be scored against it. No database needed.

    .venv/bin/python bench/appraisal_bench.py [--listings N] [--seed S]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from datetime import UTC, datetime

from carsearch.appraisal.estimator import Comparable, appraise_all, rating_for_percent
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


if __name__ == "__main__":
    main()
