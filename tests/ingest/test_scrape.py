"""Scrape runs end to end, offline: the demo site (real recorded pages over a real socket)
and a local vPIC, into a database of their own, out through the search API."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from databases import migrated_database
from fake_vpic import FakeVpic, running_fake_vpic
from httpx import ASGITransport, AsyncClient
from loopback import serving
from sqlalchemy.engine import URL

from carsearch.app import create_app
from carsearch.config import Settings
from carsearch.ingest.demo_site import create_demo_site
from carsearch.ingest.normalize import Catalog, NormalizedListing, normalize_listing
from carsearch.ingest.pipeline import RunCounts, store_page
from carsearch.ingest.records import ScrapedDealer, ScrapedListing
from carsearch.ingest.service import CarsComRun, ScrapeRequest, SourceBlocked
from carsearch.ingest.vin_cache import CachedVinDecoder
from carsearch.ingest.vin_decode import VinDecoder, decode_offline
from carsearch.ingest.vpic import VpicClient
from carsearch.listings.vin import with_check_digit
from carsearch.listings.vocab import RunStatus
from carsearch.search.indexer import rebuild_index
from carsearch.search.store import IndexStore
from carsearch.seed.service import seed_inventory

DEALER_USED_ID = "3715142b-250e-4689-a303-e5924eb2ceaa"
DEALER_USED_VIN = "19XFC2F69LE000132"
DEAD_VPIC = "http://127.0.0.1:1/api/"


@pytest.fixture(scope="module")
def dsn(server_url: URL) -> Iterator[str]:
    """A database of its own: migrated, reference makes and models loaded, no listings."""
    with migrated_database(server_url, "carsearch_ingest") as dsn:
        seed_inventory(dsn, listings=0, seed=1)
        yield dsn


@pytest.fixture(scope="module")
def demo_site() -> Iterator[str]:
    with serving(create_demo_site()) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def vpic() -> Iterator[FakeVpic]:
    with running_fake_vpic() as state:
        yield state


def settings_for(dsn: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": dsn,
        "carscom_min_interval_seconds": 0,
        "vpic_base_url": DEAD_VPIC,
        "scraper_user_agent": "CarSearchBot/0.1",
        "scraper_contact_url": "https://carsearch.example/bot",
    }
    values.update(overrides)
    return Settings(**values)


async def scrape(dsn: str, base_url: str, **options: Any) -> Any:
    settings_options = {
        key: options.pop(key) for key in list(options) if key.startswith(("vpic", "sold"))
    }
    settings = settings_for(dsn, **settings_options)
    request = ScrapeRequest.from_settings(
        settings,
        **{"zip": "95129", "radius": 50, "max_pages": 2, "base_url": base_url, **options},
    )
    return await CarsComRun(settings, dsn, request).execute()


def one(dsn: str, query: str, *params: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def reset_source(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM source_states")


async def test_a_run_stores_both_layouts_and_the_api_finds_the_cars(
    dsn: str, demo_site: str, vpic: FakeVpic, tmp_path: Path
) -> None:
    report = await scrape(dsn, demo_site, vpic_base_url=vpic.base_url)
    counts = report.counts
    assert report.status is RunStatus.succeeded, report.error
    # Page 1 is the 2026 layout (27 cards), page 2 the 2025 layout (50 cards); the one
    # detail page with a recording is fetched, the others answer 404.
    assert counts.listings_parsed == 27 + 50
    assert counts.listings_new == one(dsn, "SELECT count(*) FROM listings") > 60
    assert counts.pages_fetched >= 3
    assert counts.skipped["detail_unavailable"] >= 1
    run = one(
        dsn,
        "SELECT status, pages_fetched, listings_parsed, listings_new, robots_respected,"
        " duration_seconds FROM scrape_runs WHERE id = %s",
        report.run_id,
    )
    assert run[:5] == ("succeeded", counts.pages_fetched, 77, counts.listings_new, True)
    assert run[5] > 0
    # The detail page added what results pages do not carry.
    transmission, engine, sources = one(
        dsn,
        "SELECT l.transmission, l.engine, (SELECT array_agg(source) FROM listing_sources s"
        " WHERE s.listing_id = l.id) FROM listings l WHERE vin = %s",
        DEALER_USED_VIN,
    )
    assert transmission is not None
    assert engine is not None
    assert sources == ["carscom"]
    # Each VIN was decoded once, by vPIC, and cached.
    assert one(dsn, "SELECT count(*) FROM vin_decodes WHERE source = 'vpic'") == counts.listings_new
    assert one(dsn, "SELECT count(*) FROM listing_price_history") == one(
        dsn, "SELECT count(*) FROM listings WHERE price IS NOT NULL"
    )

    store = IndexStore(tmp_path / "index")
    rebuild_index(store, dsn)
    app = create_app(settings_for(dsn, search_index_dir=store.root, redis_url=None))
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        found = (
            await client.get("/api/v1/listings", params={"make": "Honda", "page_size": 100})
        ).json()
        assert DEALER_USED_VIN in {car["vin"] for car in found["data"]}
        detail = (await client.get(f"/api/v1/listings/{DEALER_USED_VIN}")).json()["data"]
        assert detail["sources"][0]["source"] == "carscom"
        assert detail["sources"][0]["source_listing_id"] == DEALER_USED_ID
        assert detail["specs"] is not None


async def test_running_the_same_pages_again_changes_nothing(
    dsn: str, demo_site: str, vpic: FakeVpic
) -> None:
    before = one(
        dsn,
        "SELECT (SELECT count(*) FROM listings), (SELECT count(*) FROM listing_price_history),"
        " (SELECT max(updated_at) FROM listings), (SELECT count(*) FROM dealers)",
    )
    asked = len(vpic.requests)
    report = await scrape(dsn, demo_site, vpic_base_url=vpic.base_url)
    assert report.status is RunStatus.succeeded
    assert report.counts.listings_new == 0
    assert report.counts.listings_updated == 0
    assert report.counts.price_changes == 0
    assert report.counts.listings_unchanged > 60
    after = one(
        dsn,
        "SELECT (SELECT count(*) FROM listings), (SELECT count(*) FROM listing_price_history),"
        " (SELECT max(updated_at) FROM listings), (SELECT count(*) FROM dealers)",
    )
    assert after == before  # seeing a listing again is not a change
    assert len(vpic.requests) == asked  # cached VINs are never asked again


async def test_a_price_change_is_recorded_once(dsn: str, demo_site: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        listing_id, price = conn.execute(
            "UPDATE listings SET price = price + 1000 WHERE vin = %s RETURNING id, price - 1000",
            (DEALER_USED_VIN,),
        ).fetchone()  # type: ignore[misc]
    report = await scrape(dsn, demo_site)
    assert report.counts.price_changes == 1
    assert report.counts.listings_updated == 1
    prices = [
        row[0]
        for row in psycopg.connect(dsn).execute(
            "SELECT price FROM listing_price_history WHERE listing_id = %s ORDER BY id",
            (listing_id,),
        )
    ]
    assert prices[-1] == price
    assert len(prices) == 2


async def test_a_challenge_blocks_the_source_and_it_backs_off(dsn: str) -> None:
    reset_source(dsn)
    listings_before = one(dsn, "SELECT count(*) FROM listings")
    try:
        with serving(create_demo_site(challenge=True)) as challenged:
            report = await scrape(dsn, challenged)
            assert report.status is RunStatus.blocked
            assert "cloudflare" in (report.blocked_reason or "").lower()
            assert report.counts.listings_parsed == 0  # never read as "zero listings"
            first_wait = report.blocked_until - datetime.now(UTC)
            assert timedelta(minutes=55) < first_wait <= timedelta(hours=1)
            with pytest.raises(SourceBlocked, match="left alone until"):
                await scrape(dsn, challenged)
            again = await scrape(dsn, challenged, force=True)
            assert again.status is RunStatus.blocked
            assert again.blocked_until - datetime.now(UTC) > timedelta(hours=1, minutes=55)
        state = one(dsn, "SELECT status, consecutive_blocks FROM source_states")
        assert state == ("blocked", 2)
        assert one(dsn, "SELECT count(*) FROM listings") == listings_before
    finally:
        reset_source(dsn)


async def test_robots_txt_is_honoured_unless_switched_off(dsn: str) -> None:
    with serving(create_demo_site(robots="recorded")) as strict:
        refused = await scrape(dsn, strict)
        assert refused.status is RunStatus.failed
        assert "robots.txt disallows" in (refused.error or "")
        assert refused.counts.pages_fetched == 0
        allowed = await scrape(dsn, strict, respect_robots=False, max_pages=1)
        assert allowed.status is RunStatus.succeeded
        assert not allowed.robots_respected
        assert (
            one(dsn, "SELECT robots_respected FROM scrape_runs WHERE id = %s", allowed.run_id)
            is False
        )


async def test_listings_not_seen_for_days_in_a_fully_scraped_area_are_sold(
    dsn: str, demo_site: str
) -> None:
    vin = with_check_digit("1HGCM82633A990001")
    with psycopg.connect(dsn, autocommit=True) as conn:
        dealer_id = conn.execute(
            "INSERT INTO dealers (source, source_dealer_id, name, zip, latitude, longitude)"
            " VALUES ('carscom', 'old-dealer', 'Old Motors', '95129', 37.30, -122.0)"
            " RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        stale = datetime.now(UTC) - timedelta(days=5)
        listing_id = conn.execute(
            "INSERT INTO listings (vin, source, source_listing_id, condition, year, make, model,"
            " dealer_id, price, first_seen_at, last_seen_at)"
            " VALUES (%s, 'carscom', 'old', 'used', 2003, 'Honda', 'Accord', %s, 5000, %s, %s)"
            " RETURNING id",
            (vin, dealer_id, stale, stale),
        ).fetchone()[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO listing_sources (listing_id, source, source_listing_id, dealer_id,"
            " first_seen_at, last_seen_at) VALUES (%s, 'carscom', 'old', %s, %s, %s)",
            (listing_id, dealer_id, stale, stale),
        )
    partial = await scrape(dsn, demo_site, max_pages=2)  # 2 of the area's 9 pages
    assert partial.counts.sold == 0
    complete = await scrape(dsn, demo_site, max_pages=9, fetch_details=False)
    assert complete.status is RunStatus.succeeded
    assert complete.counts.sold == 1
    assert one(dsn, "SELECT status FROM listings WHERE id = %s", listing_id) == "sold"


async def test_vpic_down_decodes_offline_and_a_later_pass_decodes_online(
    dsn: str, vpic: FakeVpic
) -> None:
    vin = with_check_digit("1FTMW1T88MFA10001")
    with psycopg.connect(dsn, autocommit=True) as conn:
        async with VpicClient(base_url=DEAD_VPIC, timeout=0.5) as dead:
            offline = await CachedVinDecoder(conn, VinDecoder(dead)).decode([vin])
        assert offline[vin].source == "offline"
        assert one(dsn, "SELECT source FROM vin_decodes WHERE vin = %s", vin) == "offline"
        async with VpicClient(base_url=vpic.base_url, min_interval=0) as live:
            decoder = CachedVinDecoder(conn, VinDecoder(live))
            assert await decoder.redecode_offline() >= 1
    assert one(dsn, "SELECT source FROM vin_decodes WHERE vin = %s", vin) == "vpic"


def test_bad_records_are_counted_and_skipped_never_half_written(dsn: str) -> None:
    good_vin = with_check_digit("1HGCM82633A990101")
    bad_check_digit = good_vin[:8] + ("0" if good_vin[8] != "0" else "1") + good_vin[9:]

    def listing(listing_id: str, vin: str | None, price: int | None) -> ScrapedListing:
        return ScrapedListing(
            source="carscom",
            source_listing_id=listing_id,
            url=f"https://www.cars.com/vehicledetail/{listing_id}/",
            vin=vin,
            price=price,
            mileage=42_000,
            year=2003,
            make="Honda",
            model="Accord",
            condition="used",
            dealer=ScrapedDealer(source_dealer_id="d-1", name="Good Cars", zip="95129"),
        )

    catalog = Catalog.from_packaged()
    results = [
        normalize_listing(listing("ok", good_vin, 7_500), catalog),
        normalize_listing(listing("bad-vin", bad_check_digit, 7_500), catalog),
        normalize_listing(listing("one-dollar", with_check_digit("1HGCM82633A990102"), 1), catalog),
        normalize_listing(listing("no-vin", None, 7_500), catalog),
    ]
    good = [r for r in results if isinstance(r, NormalizedListing)]
    reasons = sorted(
        getattr(r, "reason", "") for r in results if not isinstance(r, NormalizedListing)
    )
    assert reasons == ["implausible_price", "invalid_vin", "missing_vin"]
    counts = RunCounts()
    with psycopg.connect(dsn, autocommit=True) as conn:
        stored = store_page(
            conn, good, {good_vin: decode_offline(good_vin)}, counts, datetime.now(UTC)
        )
        assert [item.vin for item in stored] == [good_vin]
        # A page the database refuses is rolled back whole: nothing of it stays.
        broken = dataclasses.replace(good[0], vin=with_check_digit("1HGCM82633A990103"), year=1900)
        with pytest.raises(psycopg.errors.CheckViolation):
            store_page(conn, [broken], {}, RunCounts(), datetime.now(UTC))
    assert counts.listings_new == 1
    assert one(dsn, "SELECT count(*) FROM listings WHERE vin = %s", broken.vin) == 0
