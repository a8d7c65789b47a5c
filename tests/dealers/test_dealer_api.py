from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.dealers.geo import MILES_TO_METERS, ZipCentroid, zip_centroid
from carsearch.dealers.repository import (
    DEALERS_WITHIN_SQL,
    dealers_within,
    dealers_within_parameters,
)
from carsearch.listings.vocab import Condition, ListingStatus
from carsearch.models import Dealer, Listing

# earthdistance's sphere: earth() is 6378168 meters.
EARTH_RADIUS_MILES = 6_378_168 / MILES_TO_METERS
MILES_PER_DEGREE_OF_LATITUDE = math.pi / 180 * EARTH_RADIUS_MILES
# Billings, MT: few seeded dealers nearby, so the dealers a test places stand out.
REMOTE_ZIP = "59101"

PROFILE_FIELDS = (
    "id", "name", "address", "city", "state", "zip", "phone", "website", "rating",
    "review_count", "latitude", "longitude",
)  # fmt: skip

_numbers = itertools.count(1)


@pytest.fixture
def api(client: AsyncClient) -> AsyncClient:
    """The app client of tests/conftest.py."""
    return client


async def create_dealer(
    session: AsyncSession, latitude: float | None, longitude: float | None, **overrides: Any
) -> int:
    number = next(_numbers)
    values: dict[str, Any] = {
        "source": "test",
        "source_dealer_id": f"dealer-{number}",
        "name": f"Test Motors {number}",
        "latitude": latitude,
        "longitude": longitude,
    }
    statement = insert(Dealer).values(values | overrides).returning(Dealer.id)
    return int((await session.execute(statement)).scalar_one())


async def create_listing(
    session: AsyncSession, dealer_id: int, status: ListingStatus = ListingStatus.active
) -> None:
    sold_at = text("now()") if status is ListingStatus.sold else None
    await session.execute(
        insert(Listing).values(
            # "ZY" is no manufacturer's WMI, so these never collide with seeded VINs.
            vin=f"ZY{next(_numbers):015d}",
            source="test",
            condition=Condition.used,
            year=2019,
            make="Toyota",
            model="Camry",
            dealer_id=dealer_id,
            status=status,
            sold_at=sold_at,
        )
    )


def known_zip(zip_code: str) -> ZipCentroid:
    centroid = zip_centroid(zip_code)
    assert centroid is not None
    return centroid


def north_of(centroid: ZipCentroid, miles: float) -> tuple[float, float]:
    """A point `miles` due north: along a meridian, distance is latitude times a constant."""
    return centroid.latitude + miles / MILES_PER_DEGREE_OF_LATITUDE, centroid.longitude


def great_circle_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_chord = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(half_chord))


async def active_counts(session: AsyncSession, dealer_ids: list[int]) -> dict[int, int]:
    rows = await session.execute(
        text(
            "SELECT d.id, count(l.id) FROM dealers d"
            " LEFT JOIN listings l ON l.dealer_id = d.id AND l.status = 'active'"
            " WHERE d.id = ANY(:ids) GROUP BY d.id"
        ),
        {"ids": dealer_ids},
    )
    return {int(dealer_id): int(count) for dealer_id, count in rows}


def test_zip_centroid_comes_from_the_zipcodes_package() -> None:
    assert zip_centroid("10001") == ZipCentroid(
        zip="10001", city="New York", state="NY", latitude=40.7484, longitude=-73.9967
    )
    assert zip_centroid("00000") is None
    assert zip_centroid("10001") is zip_centroid("10001")


async def test_dealers_within_keeps_49_9_miles_and_drops_50_1(db_session: AsyncSession) -> None:
    centroid = known_zip(REMOTE_ZIP)
    at_centroid = await create_dealer(db_session, centroid.latitude, centroid.longitude)
    inside = await create_dealer(db_session, *north_of(centroid, 49.9))
    outside = await create_dealer(db_session, *north_of(centroid, 50.1))
    await create_dealer(db_session, None, None)

    found = await dealers_within(db_session, centroid.latitude, centroid.longitude, 50)

    distances = dict(found)
    assert distances[at_centroid] == pytest.approx(0, abs=1e-6)
    assert distances[inside] == pytest.approx(49.9, abs=1e-6)
    assert outside not in distances
    assert [distance for _, distance in found] == sorted(distance for _, distance in found)
    assert all(distance <= 50 for _, distance in found)
    # A wider radius takes the 50.1-mile dealer in, after the 49.9-mile one.
    wider = [
        dealer_id
        for dealer_id, _ in await dealers_within(
            db_session, centroid.latitude, centroid.longitude, 51
        )
    ]
    assert wider.index(inside) < wider.index(outside)


async def test_radius_search_is_answered_by_the_earth_index(db_session: AsyncSession) -> None:
    await db_session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        line
        for (line,) in await db_session.execute(
            text(f"EXPLAIN {DEALERS_WITHIN_SQL.text}"),
            dealers_within_parameters(40.7484, -73.9967, 50),
        )
    )
    assert "ix_dealers_earth" in plan


async def test_dealers_near_a_zip_nearest_first_with_counts(
    api: AsyncClient, db_session: AsyncSession, seeded: int
) -> None:
    origin_zip = (
        await db_session.execute(
            text("SELECT zip FROM dealers WHERE source = 'seed' ORDER BY id LIMIT 1")
        )
    ).scalar_one()
    centroid = known_zip(origin_zip)
    everywhere = (
        await db_session.execute(
            text("SELECT id, latitude, longitude FROM dealers WHERE latitude IS NOT NULL")
        )
    ).all()
    expected = {
        dealer_id: great_circle_miles(centroid.latitude, centroid.longitude, lat, lon)
        for dealer_id, lat, lon in everywhere
    }
    expected = {dealer_id: miles for dealer_id, miles in expected.items() if miles <= 500}

    response = await api.get(
        "/api/v1/dealers", params={"zip": origin_zip, "radius": 500, "page_size": 100}
    )

    assert response.status_code == 200
    body = response.json()
    dealers = body["data"]
    assert body["meta"]["pagination"] == {
        "page": 1,
        "page_size": 100,
        "total": len(expected),
        "total_pages": math.ceil(len(expected) / 100),
    }
    assert len(expected) >= 2
    assert {dealer["id"] for dealer in dealers} == set(expected)
    distances = [dealer["distance_miles"] for dealer in dealers]
    assert distances == sorted(distances)
    assert distances[0] == 0
    for dealer in dealers:
        assert dealer["distance_miles"] == pytest.approx(expected[dealer["id"]], abs=0.01)
    counts = await active_counts(db_session, list(expected))
    assert {dealer["id"]: dealer["active_listing_count"] for dealer in dealers} == counts
    assert sum(counts.values()) > 0


async def test_dealers_near_a_zip_at_the_radius_edge(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    centroid = known_zip(REMOTE_ZIP)
    inside = await create_dealer(db_session, *north_of(centroid, 49.9), name="Inside Auto")
    outside = await create_dealer(db_session, *north_of(centroid, 50.1))
    await create_listing(db_session, inside)
    await create_listing(db_session, inside)
    await create_listing(db_session, inside, ListingStatus.sold)

    response = await api.get(
        "/api/v1/dealers", params={"zip": REMOTE_ZIP, "radius": 50, "page_size": 100}
    )

    assert response.status_code == 200
    by_id = {dealer["id"]: dealer for dealer in response.json()["data"]}
    assert outside not in by_id
    assert by_id[inside]["name"] == "Inside Auto"
    assert by_id[inside]["distance_miles"] == 49.9
    assert by_id[inside]["active_listing_count"] == 2


async def test_dealer_pages_follow_each_other(api: AsyncClient, db_session: AsyncSession) -> None:
    centroid = known_zip(REMOTE_ZIP)
    for miles in (1, 2, 3, 4, 5):
        await create_dealer(db_session, *north_of(centroid, miles))
    params = {"zip": REMOTE_ZIP, "radius": 10}

    everything = (await api.get("/api/v1/dealers", params=params | {"page_size": 100})).json()
    pages = [
        (await api.get("/api/v1/dealers", params=params | {"page": page, "page_size": 2})).json()
        for page in (1, 2, 3)
    ]

    total = everything["meta"]["pagination"]["total"]
    assert total >= 5
    assert [dealer["id"] for page in pages for dealer in page["data"]] == [
        dealer["id"] for dealer in everything["data"]
    ][:6]
    assert pages[0]["meta"]["pagination"] == {
        "page": 1,
        "page_size": 2,
        "total": total,
        "total_pages": math.ceil(total / 2),
    }


async def test_page_past_the_end_is_empty_with_the_total(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    centroid = known_zip(REMOTE_ZIP)
    await create_dealer(db_session, centroid.latitude, centroid.longitude)
    total = (await api.get("/api/v1/dealers", params={"zip": REMOTE_ZIP})).json()["meta"][
        "pagination"
    ]["total"]

    response = await api.get("/api/v1/dealers", params={"zip": REMOTE_ZIP, "page": 500})

    assert response.status_code == 200
    assert response.json() == {
        "data": [],
        "meta": {
            "pagination": {
                "page": 500,
                "page_size": 24,
                "total": total,
                "total_pages": math.ceil(total / 24),
            }
        },
    }
    assert total >= 1


async def test_unknown_zip_is_a_bad_request(api: AsyncClient) -> None:
    response = await api.get("/api/v1/dealers", params={"zip": "00000"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["message"] == "unknown ZIP code"
    assert error["details"][0]["loc"] == ["query", "zip"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"zip": "1234"},
        {"zip": "123456"},
        {"zip": "abcde"},
        {"zip": "9021O"},
        {"zip": "90210-1234"},
    ],
)
async def test_malformed_zip_is_rejected(api: AsyncClient, params: dict[str, str]) -> None:
    response = await api.get("/api/v1/dealers", params=params)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("invalid zip: ")
    assert error["details"][0]["loc"] == ["query", "zip"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("radius", "0"),
        ("radius", "501"),
        ("radius", "x"),
        ("radius", "-5"),
        ("page", "0"),
        ("page_size", "0"),
        ("page_size", "101"),
    ],
)
async def test_out_of_range_search_parameters_are_rejected(
    api: AsyncClient, name: str, value: str
) -> None:
    response = await api.get("/api/v1/dealers", params={"zip": "10001", name: value})

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(f"invalid {name}: ")


async def test_dealer_detail_of_a_seeded_dealer(
    api: AsyncClient, db_session: AsyncSession, seeded: int
) -> None:
    dealer = (
        (
            await db_session.execute(
                text("SELECT * FROM dealers WHERE source = 'seed' ORDER BY id LIMIT 1")
            )
        )
        .mappings()
        .one()
    )

    response = await api.get(f"/api/v1/dealers/{dealer['id']}")

    assert response.status_code == 200
    active = (await active_counts(db_session, [dealer["id"]]))[dealer["id"]]
    assert active > 0
    assert response.json()["data"] == {
        **{key: dealer[key] for key in PROFILE_FIELDS},
        "active_listing_count": active,
    }


async def test_dealer_detail_counts_only_active_listings(
    api: AsyncClient, db_session: AsyncSession
) -> None:
    dealer_id = await create_dealer(db_session, None, None)
    await create_listing(db_session, dealer_id)
    await create_listing(db_session, dealer_id, ListingStatus.sold)
    await create_listing(db_session, dealer_id, ListingStatus.removed)

    data = (await api.get(f"/api/v1/dealers/{dealer_id}")).json()["data"]

    assert data["active_listing_count"] == 1
    assert data["latitude"] is None


async def test_unknown_dealer_is_not_found(api: AsyncClient, db_session: AsyncSession) -> None:
    unknown = (
        await db_session.execute(text("SELECT coalesce(max(id), 0) + 1000 FROM dealers"))
    ).scalar_one()

    response = await api.get(f"/api/v1/dealers/{unknown}")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": f"no dealer with id {unknown}", "details": []}
    }


@pytest.mark.parametrize("dealer_id", ["abc", "0", "-1", "1.5", str(2**63)])
async def test_malformed_dealer_id_is_rejected(api: AsyncClient, dealer_id: str) -> None:
    response = await api.get(f"/api/v1/dealers/{dealer_id}")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith("invalid dealer_id: ")
    assert error["details"][0]["loc"] == ["path", "dealer_id"]
