from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.listings.vocab import Condition, ListingStatus
from carsearch.models import Dealer, Listing, ListingPriceHistory, ListingSource

_vin_numbers = itertools.count(1)


@pytest.fixture
def api(client: AsyncClient) -> AsyncClient:
    """The app client of tests/conftest.py."""
    return client


def unused_vin() -> str:
    # "ZZ" is no manufacturer's WMI, so these never collide with seeded VINs.
    return f"ZZ{next(_vin_numbers):015d}"


async def create_dealer(session: AsyncSession, **overrides: Any) -> int:
    values: dict[str, Any] = {
        "source": "test",
        "source_dealer_id": f"dealer-{unused_vin()}",
        "name": "Test Motors",
        "city": "Springfield",
        "state": "IL",
        "zip": "62701",
        "latitude": 39.8,
        "longitude": -89.65,
    }
    return int(
        (
            await session.execute(insert(Dealer).values(values | overrides).returning(Dealer.id))
        ).scalar_one()
    )


async def create_listing(session: AsyncSession, **overrides: Any) -> tuple[int, str]:
    values: dict[str, Any] = {
        "vin": unused_vin(),
        "source": "test",
        "condition": Condition.used,
        "year": 2020,
        "make": "Honda",
        "model": "Accord",
        "price": 21_000,
        "first_seen_at": datetime(2026, 9, 1, 12, tzinfo=UTC),
    }
    values |= overrides
    listing_id = (
        await session.execute(insert(Listing).values(values).returning(Listing.id))
    ).scalar_one()
    return int(listing_id), values["vin"]


async def add_price(session: AsyncSession, listing_id: int, price: int, at: datetime) -> None:
    await session.execute(
        insert(ListingPriceHistory).values(
            listing_id=listing_id, price=price, mileage=30_000, observed_at=at
        )
    )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_detail_of_a_seeded_listing(
    api: AsyncClient, db_session: AsyncSession, seeded: int
) -> None:
    listing = (
        (
            await db_session.execute(
                text(
                    "SELECT l.* FROM listings l WHERE l.dealer_id IS NOT NULL AND"
                    " (SELECT count(*) FROM listing_price_history h WHERE h.listing_id = l.id) >= 3"
                    " ORDER BY l.id LIMIT 1"
                )
            )
        )
        .mappings()
        .one()
    )
    # A second site and a decoded VIN, so every part of the page has something in it.
    await db_session.execute(
        insert(ListingSource).values(
            listing_id=listing["id"],
            source="cars",
            source_listing_id=f"cars-{listing['id']}",
            url="https://www.cars.com/vehicledetail/x/",
            first_seen_at=listing["first_seen_at"] + timedelta(days=1),
        )
    )
    specs = {"source": "vpic", "model_year": listing["year"], "make": listing["make"].upper()}
    await db_session.execute(
        text("UPDATE listings SET vin_decoded = CAST(:specs AS jsonb) WHERE id = :id"),
        {"specs": json.dumps(specs), "id": listing["id"]},
    )

    response = await api.get(f"/api/v1/listings/{listing['vin']}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "meta"}
    detail = body["data"]
    for column in (
        "vin", "status", "condition", "year", "make", "model", "trim", "body_style",
        "drivetrain", "fuel_type", "transmission", "engine", "exterior_color",
        "interior_color", "mileage", "price", "msrp", "images", "features", "description",
    ):  # fmt: skip
        assert detail[column] == listing[column], column
    assert parse_time(detail["first_seen_at"]) == listing["first_seen_at"]
    assert parse_time(detail["last_seen_at"]) == listing["last_seen_at"]
    assert detail["specs"] == specs

    dealer = (
        (
            await db_session.execute(
                text("SELECT * FROM dealers WHERE id = :id"), {"id": listing["dealer_id"]}
            )
        )
        .mappings()
        .one()
    )
    assert detail["dealer"] == {
        key: dealer[key]
        for key in (
            "id", "name", "address", "city", "state", "zip", "phone", "website", "rating",
            "review_count", "latitude", "longitude",
        )
    }  # fmt: skip

    sources = (
        await db_session.execute(
            text(
                "SELECT source, source_listing_id, url FROM listing_sources"
                " WHERE listing_id = :id ORDER BY first_seen_at, id"
            ),
            {"id": listing["id"]},
        )
    ).all()
    assert len(sources) == 2
    assert [(s["source"], s["source_listing_id"], s["url"]) for s in detail["sources"]] == [
        tuple(row) for row in sources
    ]

    prices = [
        price
        for (price,) in await db_session.execute(
            text(
                "SELECT price FROM listing_price_history WHERE listing_id = :id"
                " ORDER BY observed_at, id"
            ),
            {"id": listing["id"]},
        )
    ]
    summary = detail["price_summary"]
    assert summary["first_price"] == prices[0]
    assert summary["current_price"] == prices[-1] == listing["price"]
    assert summary["lowest_price"] == min(prices)
    assert summary["highest_price"] == max(prices)
    assert summary["total_change"] == prices[-1] - prices[0]
    assert summary["number_of_changes"] == len(prices) - 1
    assert summary["days_on_market"] == detail["days_on_market"]

    history = (await api.get(f"/api/v1/listings/{listing['vin']}/history")).json()["data"]
    assert history["summary"] == summary
    assert [point["price"] for point in history["points"]] == prices


async def test_history_is_oldest_first_with_its_summary(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    listing_id, vin = await create_listing(db_session, price=27_000)
    start = datetime(2026, 9, 1, 12, tzinfo=UTC)
    # Inserted out of order: the endpoint orders by when each price was seen.
    for price, days in ((28_500, 10), (30_000, 0), (27_000, 30), (29_000, 20)):
        await add_price(db_session, listing_id, price, start + timedelta(days=days))

    before = datetime.now(UTC)
    response = await api.get(f"/api/v1/listings/{vin}/history")
    after = datetime.now(UTC)

    assert response.status_code == 200
    data = response.json()["data"]
    assert data["vin"] == vin
    assert [(p["price"], parse_time(p["observed_at"])) for p in data["points"]] == [
        (30_000, start),
        (28_500, start + timedelta(days=10)),
        (29_000, start + timedelta(days=20)),
        (27_000, start + timedelta(days=30)),
    ]
    summary = data["summary"]
    assert {key: value for key, value in summary.items() if key != "days_on_market"} == {
        "first_price": 30_000,
        "current_price": 27_000,
        "lowest_price": 27_000,
        "highest_price": 30_000,
        "total_change": -3_000,
        "total_change_percent": -10.0,
        "number_of_changes": 3,
        "last_change_at": summary["last_change_at"],
    }
    assert parse_time(summary["last_change_at"]) == start + timedelta(days=30)
    assert (before - start).days <= summary["days_on_market"] <= (after - start).days


async def test_a_price_that_never_changed_has_no_last_change(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    listing_id, vin = await create_listing(db_session, price=15_500)
    await add_price(db_session, listing_id, 15_500, datetime(2026, 10, 1, tzinfo=UTC))

    summary = (await api.get(f"/api/v1/listings/{vin}/history")).json()["data"]["summary"]

    assert summary["number_of_changes"] == 0
    assert summary["total_change"] == 0
    assert summary["total_change_percent"] == 0.0
    assert summary["last_change_at"] is None


async def test_sold_listing_counts_days_until_it_sold(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    first_seen = datetime(2026, 3, 1, 8, tzinfo=UTC)
    sold_at = first_seen + timedelta(days=14, hours=20)
    listing_id, vin = await create_listing(
        db_session, status=ListingStatus.sold, first_seen_at=first_seen, sold_at=sold_at
    )
    await add_price(db_session, listing_id, 21_000, first_seen)

    detail = (await api.get(f"/api/v1/listings/{vin}")).json()["data"]
    history = (await api.get(f"/api/v1/listings/{vin}/history")).json()["data"]

    assert detail["status"] == "sold"
    assert parse_time(detail["sold_at"]) == sold_at
    assert detail["days_on_market"] == 14
    assert detail["price_summary"]["days_on_market"] == 14
    assert history["summary"]["days_on_market"] == 14


async def test_removed_listing_counts_days_until_last_seen(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    first_seen = datetime(2026, 3, 1, 8, tzinfo=UTC)
    _, vin = await create_listing(
        db_session,
        status=ListingStatus.removed,
        first_seen_at=first_seen,
        last_seen_at=first_seen + timedelta(days=9, hours=3),
    )

    detail = (await api.get(f"/api/v1/listings/{vin}")).json()["data"]

    assert detail["days_on_market"] == 9


async def test_listing_without_dealer_or_price(api: AsyncClient, db_session: AsyncSession) -> None:
    _, vin = await create_listing(db_session, price=None, dealer_id=None)

    detail = (await api.get(f"/api/v1/listings/{vin}")).json()["data"]

    assert detail["dealer"] is None
    assert detail["sources"] == []
    assert detail["specs"] is None
    assert detail["images"] == []
    assert detail["features"] == []
    summary = detail["price_summary"]
    assert summary["first_price"] is None
    assert summary["current_price"] is None
    assert summary["total_change_percent"] is None
    assert summary["number_of_changes"] == 0


@pytest.mark.parametrize("path", ["/api/v1/listings/{vin}", "/api/v1/listings/{vin}/history"])
async def test_vin_in_lower_case_with_spaces_is_accepted(
    api: AsyncClient, db_session: AsyncSession, path: str
) -> None:
    dealer_id = await create_dealer(db_session)
    _, vin = await create_listing(db_session, dealer_id=dealer_id)

    response = await api.get(path.format(vin=f" {vin.lower()} "))

    assert response.status_code == 200
    assert response.json()["data"]["vin"] == vin


@pytest.mark.parametrize(
    ("vin", "reason"),
    [
        ("1HGCM82633A00435", "has 17 characters, this one has 16"),
        ("1HGCM82633A0043521", "has 17 characters, this one has 18"),
        ("1HGCM82633A00435I", "never contains the letters I, O or Q"),
        ("1HGCM82633A00435o", "never contains the letters I, O or Q"),
        ("1HGCM82633A00435Q", "never contains the letters I, O or Q"),
        ("1HGCM82633A00435-", "only the letters A-Z"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/listings/{vin}", "/api/v1/listings/{vin}/history"])
async def test_malformed_vin_is_rejected(
    api: AsyncClient, path: str, vin: str, reason: str
) -> None:
    response = await api.get(path.format(vin=vin))

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(f"invalid VIN '{vin.upper()}': ")
    assert reason in error["message"]
    assert error["details"][0]["loc"] == ["path", "vin"]


@pytest.mark.parametrize("path", ["/api/v1/listings/{vin}", "/api/v1/listings/{vin}/history"])
async def test_unknown_vin_is_not_found(
    api: AsyncClient, db_session: AsyncSession, path: str
) -> None:
    vin = unused_vin()
    assert (
        await db_session.execute(
            text("SELECT count(*) FROM listings WHERE vin = :vin"), {"vin": vin}
        )
    ).scalar_one() == 0

    response = await api.get(path.format(vin=vin.lower()))

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": f"no listing with VIN {vin}", "details": []}
    }
