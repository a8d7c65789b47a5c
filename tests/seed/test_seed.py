from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import zipcodes
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from carsearch.db import migrate
from carsearch.db.engine import create_sync_engine, libpq_dsn
from carsearch.errors import SetupError
from carsearch.listings.vin import VIN_CHARACTERS, is_valid_vin, model_year
from carsearch.listings.vocab import Condition, ListingStatus
from carsearch.seed.generator import InventoryGenerator, SeedListing
from carsearch.seed.reference import load_reference
from carsearch.seed.service import seed_inventory

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def _generate(count: int, seed: int) -> list[SeedListing]:
    generator = InventoryGenerator(load_reference(), seed=seed, now=NOW)
    dealers = generator.dealers(max(5, count // 60))
    return list(generator.listings(count, dealers))


def test_reference_data_is_large_and_consistent() -> None:
    makes = load_reference()
    assert len(makes) >= 40
    assert sum(len(make.models) for make in makes) >= 400
    names = [make.name.lower() for make in makes]
    assert len(names) == len(set(names))
    for make in makes:
        assert all(len(wmi) == 3 and set(wmi) <= set(VIN_CHARACTERS) for wmi in make.wmis)
        assert len({model.name for model in make.models}) == len(make.models)


def test_same_seed_same_inventory_other_seed_other_inventory() -> None:
    def fingerprint(listings: list[SeedListing]) -> list[tuple[object, ...]]:
        return [(x.vin, x.price, x.mileage, x.make, x.model, x.dealer_id) for x in listings]

    assert fingerprint(_generate(500, seed=3)) == fingerprint(_generate(500, seed=3))
    assert fingerprint(_generate(500, seed=3)) != fingerprint(_generate(500, seed=4))


def test_every_vin_is_valid_for_its_make_and_year() -> None:
    wmis = {make.name: set(make.wmis) for make in load_reference()}
    listings = _generate(3_000, seed=11)
    assert len({x.vin for x in listings}) == len(listings)
    for listing in listings:
        assert is_valid_vin(listing.vin), listing.vin
        assert listing.vin[:3] in wmis[listing.make]
        assert model_year(listing.vin) == listing.year


def test_prices_and_miles_behave_like_a_market() -> None:
    listings = _generate(6_000, seed=5)
    used = [x for x in listings if x.condition is not Condition.new and x.price]
    young = [x.price / x.msrp for x in used if NOW.year - x.year <= 2 if x.price]
    old = [x.price / x.msrp for x in used if NOW.year - x.year >= 8 if x.price]
    assert statistics.median(young) > statistics.median(old) + 0.2
    assert 0.55 < statistics.median(young) < 0.95
    for listing in used:
        age = NOW.year - listing.year + 1
        assert listing.mileage < 40_000 * age
    new = [x for x in listings if x.condition is Condition.new]
    assert new
    assert all(x.mileage <= 60 for x in new)
    assert all(x.year >= NOW.year - 1 for x in new)
    # Asking prices scatter around the true value, not far from it.
    errors = [abs(x.price / x.true_value - 1) for x in listings if x.price]
    assert 0.03 < statistics.median(errors) < 0.08


def test_seeded_database_holds_a_coherent_inventory(seeded: int, sync_engine: Engine) -> None:
    with sync_engine.connect() as connection:

        def scalar(sql: str) -> object:
            return connection.execute(text(sql)).scalar_one()

        assert scalar("SELECT count(*) FROM listings") == seeded
        assert scalar("SELECT count(*) FROM listing_sources") == seeded
        assert scalar("SELECT count(*) FROM makes") >= 40
        assert scalar("SELECT count(*) FROM models") >= 400
        # Every priced listing has its first observation; the last row is today's price.
        assert (
            scalar(
                "SELECT count(*) FROM listings l WHERE price IS NOT NULL AND price <> ("
                " SELECT h.price FROM listing_price_history h WHERE h.listing_id = l.id"
                " ORDER BY observed_at DESC, h.id DESC LIMIT 1)"
            )
            == 0
        )
        assert (
            scalar(
                "SELECT count(*) FROM listings l WHERE price IS NOT NULL AND NOT EXISTS ("
                " SELECT 1 FROM listing_price_history h WHERE h.listing_id = l.id)"
            )
            == 0
        )
        # A history row exists only where the price changed.
        assert (
            scalar(
                "SELECT count(*) FROM (SELECT price, lag(price) OVER w AS previous"
                " FROM listing_price_history WINDOW w AS (PARTITION BY listing_id"
                " ORDER BY observed_at, id)) t WHERE price = previous"
            )
            == 0
        )
        repriced = scalar(
            "SELECT count(*) FROM (SELECT listing_id FROM listing_price_history"
            " GROUP BY listing_id HAVING count(*) > 1) t"
        )
        assert 0.22 * seeded < repriced < 0.40 * seeded
        drops = scalar(
            "SELECT avg((price < previous)::int) FROM (SELECT price, lag(price) OVER w"
            " AS previous FROM listing_price_history WINDOW w AS (PARTITION BY listing_id"
            " ORDER BY observed_at, id)) t WHERE previous IS NOT NULL"
        )
        assert float(drops) > 0.75  # type: ignore[arg-type]
        statuses = Counter(
            dict(connection.execute(text("SELECT status, count(*) FROM listings GROUP BY 1")).all())
        )
        assert 0.06 * seeded < statuses[ListingStatus.sold.value] < 0.14 * seeded
        assert (
            scalar(
                "SELECT count(*) FROM listings WHERE status = 'sold'"
                " AND (sold_at IS NULL OR sold_at < first_seen_at OR sold_at > now())"
            )
            == 0
        )
        dealers = connection.execute(text("SELECT zip, latitude, longitude FROM dealers")).all()
    assert len(dealers) >= seeded // 100
    for zip_code, latitude, longitude in dealers[:50]:
        (place,) = zipcodes.matching(zip_code)
        assert abs(float(place["lat"]) - latitude) < 1e-6
        assert abs(float(place["long"]) - longitude) < 1e-6


def test_seeding_twice_needs_reset_and_reset_replaces(
    make_database: Callable[..., URL],
) -> None:
    url = make_database()
    engine = create_sync_engine(url)
    migrate.upgrade(engine)
    dsn = libpq_dsn(url)
    seed_inventory(dsn, listings=200, seed=1)
    with pytest.raises(SetupError, match="--reset"):
        seed_inventory(dsn, listings=200, seed=1)
    with engine.connect() as connection:
        before = connection.execute(text("SELECT count(*) FROM listings")).scalar_one()
    assert before == 200  # the refused run wrote nothing
    report = seed_inventory(dsn, listings=300, seed=2, reset=True)
    assert report.listings == 300
    with engine.begin() as connection:
        assert connection.execute(text("SELECT count(*) FROM listings")).scalar_one() == 300
        # Ids were copied explicitly; the identity sequence must have moved past them.
        connection.execute(
            text(
                "INSERT INTO listings (vin, source, condition, year, make, model)"
                " VALUES ('1HGCM82633A004352', 'test', 'used', 2003, 'Honda', 'Accord')"
            )
        )
    engine.dispose()


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(SetupError, match="between 0"):
        seed_inventory("postgresql://unused", listings=-5, seed=1)
