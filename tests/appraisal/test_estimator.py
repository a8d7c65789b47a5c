from __future__ import annotations

import math
import random
import statistics
from dataclasses import replace

import pytest

from carsearch.appraisal.estimator import (
    Appraisal,
    Comparable,
    appraise_all,
    rating_for_percent,
)

CURRENT_YEAR = 2026
TRIM_PREMIUM = {"LX": 1.0, "EX": 1.15, "Touring": 1.3}


def law_price(trim: str, year: int, mileage: int, condition: str) -> float:
    """The market the synthetic groups follow exactly (before any noise)."""
    age = CURRENT_YEAR - year
    if condition == "new":
        sticker: float = 32_000 * TRIM_PREMIUM[trim] * 0.97**age
        return sticker
    value: float = 40_000 * TRIM_PREMIUM[trim] * 0.88**age * (1 + mileage) ** -0.1
    return value * (1.05 if condition == "cpo" else 1.0)


def create_group(
    count: int,
    *,
    seed: int = 1,
    noise: float = 0.0,
    first_id: int = 1,
    model: str = "Accord",
    new_share: float = 0.0,
    status: str = "active",
) -> list[Comparable]:
    rng = random.Random(seed)
    listings = []
    for offset in range(count):
        trim = rng.choice(tuple(TRIM_PREMIUM))
        if rng.random() < new_share:
            condition, year, mileage = "new", CURRENT_YEAR - rng.choice((0, 1)), rng.randint(2, 60)
        else:
            year = CURRENT_YEAR - rng.randint(1, 10)
            mileage = max(500, int((CURRENT_YEAR - year) * rng.gauss(12_000, 3_000)))
            condition = "cpo" if rng.random() < 0.2 else "used"
        price = law_price(trim, year, mileage, condition) * math.exp(rng.gauss(0, noise))
        listings.append(
            Comparable(
                listing_id=first_id + offset,
                make="Honda",
                model=model,
                trim=trim,
                year=year,
                mileage=mileage,
                condition=condition,
                price=round(price),
                status=status,
            )
        )
    return listings


def law_of(listing: Comparable) -> float:
    return law_price(listing.trim, listing.year, listing.mileage or 0, listing.condition)


def relative_error(appraisal: Appraisal, listing: Comparable) -> float:
    assert appraisal.estimate is not None
    return abs(appraisal.estimate - law_of(listing)) / law_of(listing)


def test_exact_price_law_is_recovered() -> None:
    group = create_group(60, new_share=0.3)
    appraisals = appraise_all(group, current_year=CURRENT_YEAR)
    for listing in group:
        appraisal = appraisals[listing.listing_id]
        assert appraisal.rating == "fair"
        assert relative_error(appraisal, listing) < 0.005
        assert appraisal.comparables == 59  # everyone but itself


def test_noisy_market_is_estimated_within_a_few_percent() -> None:
    group = create_group(300, noise=0.07, seed=7, new_share=0.2)
    appraisals = appraise_all(group, current_year=CURRENT_YEAR)
    errors = [relative_error(appraisals[c.listing_id], c) for c in group]
    assert statistics.median(errors) < 0.03
    assert max(errors) < 0.15


def test_a_listing_never_appraises_itself() -> None:
    group = create_group(40, noise=0.05, seed=3)
    target = group[0]

    def estimate_when_priced_at(share_of_law: float) -> Appraisal:
        priced = replace(target, price=round(law_of(target) * share_of_law))
        return appraise_all([priced, *group[1:]], current_year=CURRENT_YEAR)[target.listing_id]

    # 12% over stays in the fit (the trim is ~15% here), yet its own price moves nothing.
    at_law, overpriced = estimate_when_priced_at(1.0), estimate_when_priced_at(1.12)
    assert overpriced.comparables == at_law.comparables == 39
    assert overpriced.estimate is not None
    assert at_law.estimate is not None
    assert abs(overpriced.estimate - at_law.estimate) <= 2
    assert relative_error(overpriced, target) < 0.05


def test_absurd_price_is_trimmed_and_rated_overpriced() -> None:
    group = create_group(40, seed=5)
    target = group[0]
    absurd = replace(target, price=round(law_of(target) * 10))
    clean = appraise_all(group, current_year=CURRENT_YEAR)
    with_outlier = appraise_all([absurd, *group[1:]], current_year=CURRENT_YEAR)

    appraisal = with_outlier[target.listing_id]
    assert appraisal.rating == "overpriced"
    assert appraisal.comparables == 39  # trimmed: not in the fit at all
    assert relative_error(appraisal, target) < 0.05
    assert appraisal.percent is not None
    assert appraisal.percent > 800
    for listing in group[1:]:
        a, b = clean[listing.listing_id].estimate, with_outlier[listing.listing_id].estimate
        assert a is not None
        assert b is not None
        assert abs(a - b) / a < 0.01


def test_listing_without_price_gets_an_estimate_but_no_rating() -> None:
    group = create_group(30, seed=2)
    priceless = replace(group[0], listing_id=999, price=None)
    appraisal = appraise_all([*group, priceless], current_year=CURRENT_YEAR)[999]
    assert appraisal.rating == "none"
    assert appraisal.reason == "no_price"
    assert appraisal.estimate is not None
    assert relative_error(appraisal, priceless) < 0.01
    assert appraisal.comparables == 30


def test_used_car_without_mileage_is_neither_rated_nor_a_comparable() -> None:
    group = create_group(30, seed=2)
    unknown = replace(group[0], listing_id=999, mileage=None, condition="used")
    appraisals = appraise_all([*group, unknown], current_year=CURRENT_YEAR)
    assert appraisals[999] == Appraisal(
        estimate=None, rating="none", reason="no_mileage", comparables=30
    )
    assert appraisals[group[1].listing_id].comparables == 29  # held out: 30 - itself


def test_removed_listings_are_appraised_but_are_not_comparables() -> None:
    group = create_group(30, seed=2)
    removed = create_group(10, seed=9, first_id=100, status="removed")
    # Removed listings priced at half the market would drag the fit down if they counted.
    removed = [replace(c, price=(c.price or 0) // 2) for c in removed]
    appraisals = appraise_all([*group, *removed], current_year=CURRENT_YEAR)
    for listing in removed:
        appraisal = appraisals[listing.listing_id]
        assert appraisal.rating == "great"
        assert appraisal.comparables == 30
        assert relative_error(appraisal, listing) < 0.01


def test_rare_model() -> None:
    appraisals = appraise_all(create_group(11), current_year=CURRENT_YEAR)
    assert {a.reason for a in appraisals.values()} == {"rare_model"}
    assert all(a.estimate is None and a.rating == "none" for a in appraisals.values())


def test_too_few_comparables() -> None:
    active = create_group(11, seed=4)
    removed = create_group(20, seed=5, first_id=100, status="removed")
    appraisals = appraise_all([*active, *removed], current_year=CURRENT_YEAR)
    assert {a.reason for a in appraisals.values()} == {"too_few_comparables"}
    assert {a.comparables for a in appraisals.values()} == {11}


def test_new_car_without_a_new_car_market() -> None:
    used = create_group(30, seed=6)
    new = [
        replace(c, listing_id=200 + i, condition="new", year=CURRENT_YEAR, mileage=10)
        for i, c in enumerate(used[:7])
    ]
    appraisals = appraise_all([*used, *new], current_year=CURRENT_YEAR)
    assert {appraisals[c.listing_id].reason for c in new} == {"new_car"}
    assert all(appraisals[c.listing_id].rating == "fair" for c in used)


def test_new_cars_are_rated_against_other_new_cars() -> None:
    group = create_group(80, seed=8, new_share=0.4, noise=0.02)
    appraisals = appraise_all(group, current_year=CURRENT_YEAR)
    new = [c for c in group if c.condition == "new"]
    assert len(new) >= 8
    assert all(appraisals[c.listing_id].rating != "none" for c in new)
    assert statistics.median(relative_error(appraisals[c.listing_id], c) for c in new) < 0.02


def test_uncommon_trim_shares_the_base_level() -> None:
    group = create_group(40, seed=10)
    rare_trim = [replace(c, listing_id=300 + i, trim="Sport") for i, c in enumerate(group[:3])]
    appraisals = appraise_all([*group, *rare_trim], current_year=CURRENT_YEAR)
    assert all(appraisals[c.listing_id].estimate is not None for c in rare_trim)


def test_groups_are_by_make_and_model() -> None:
    accords = create_group(30, seed=11)
    civics = [replace(c, listing_id=c.listing_id + 1000, model="Civic") for c in accords[:11]]
    appraisals = appraise_all([*accords, *civics], current_year=CURRENT_YEAR)
    assert {appraisals[c.listing_id].reason for c in civics} == {"rare_model"}
    assert all(appraisals[c.listing_id].rating == "fair" for c in accords)


@pytest.mark.parametrize(
    ("percent", "rating"),
    [
        (-25.0, "great"),
        (-10.0, "great"),
        (-9.99, "good"),
        (-5.0, "good"),
        (-4.99, "fair"),
        (0.0, "fair"),
        (5.0, "fair"),
        (5.01, "high"),
        (10.0, "high"),
        (10.01, "overpriced"),
    ],
)
def test_tier_boundaries(percent: float, rating: str) -> None:
    assert rating_for_percent(percent) == rating


def test_rating_follows_percent_difference() -> None:
    group = create_group(40, seed=12)
    target = group[0]
    cheap = replace(target, price=round(law_of(target) * 0.92))
    appraisal = appraise_all([cheap, *group[1:]], current_year=CURRENT_YEAR)[target.listing_id]
    assert appraisal.estimate is not None
    assert cheap.price is not None
    assert appraisal.rating == "good"
    assert appraisal.difference == cheap.price - appraisal.estimate
    assert appraisal.percent == pytest.approx(-8.0, abs=0.5)


def test_deterministic_whatever_the_input_order() -> None:
    group = [*create_group(50, noise=0.07, seed=13), *create_group(20, seed=14, first_id=500)]
    shuffled = list(group)
    random.Random(0).shuffle(shuffled)
    first = appraise_all(group, current_year=CURRENT_YEAR)
    assert appraise_all(shuffled, current_year=CURRENT_YEAR) == first
    assert appraise_all(group, current_year=CURRENT_YEAR) == first
