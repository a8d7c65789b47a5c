"""Search answers agree with SQL over the same seeded data."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import Engine, text

pytestmark = pytest.mark.usefixtures("seeded")


def sql_count(engine: Engine, where: str = "TRUE", **params: Any) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(f"SELECT count(*) FROM listings l WHERE status = 'active' AND {where}"),
                params,
            ).scalar_one()
        )


async def search(client: AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/listings", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_default_search_counts_every_active_listing(
    client: AsyncClient, sync_engine: Engine
) -> None:
    body = await search(client)
    pagination = body["meta"]["pagination"]
    assert pagination["total"] == sql_count(sync_engine)
    assert pagination["page_size"] == 24
    assert len(body["data"]) == 24
    first = body["data"][0]
    assert {"vin", "year", "make", "model", "price", "mileage", "days_on_market"} <= first.keys()


@pytest.mark.parametrize(
    ("params", "where", "sql_params"),
    [
        ({"make": "Toyota"}, "make = 'Toyota'", {}),
        ({"make": ["Toyota", "Honda"]}, "make IN ('Toyota', 'Honda')", {}),
        (
            {"make": ["Toyota", "Honda"], "body_style": "suv"},
            "make IN ('Toyota', 'Honda') AND body_style = 'suv'",
            {},
        ),
        ({"year_min": 2018, "year_max": 2021}, "year BETWEEN 2018 AND 2021", {}),
        ({"price_min": 10000, "price_max": 25000}, "price BETWEEN 10000 AND 25000", {}),
        ({"mileage_max": 30000}, "mileage <= 30000", {}),
        (
            {"condition": ["cpo", "new"], "fuel_type": "hybrid"},
            "condition IN ('cpo', 'new') AND fuel_type = 'hybrid'",
            {},
        ),
        (
            {"exterior_color": "blue", "drivetrain": "awd"},
            "exterior_color = 'blue' AND drivetrain = 'awd'",
            {},
        ),
    ],
)
async def test_filters_agree_with_sql(
    client: AsyncClient,
    sync_engine: Engine,
    params: dict[str, Any],
    where: str,
    sql_params: dict[str, Any],
) -> None:
    body = await search(client, **params)
    assert body["meta"]["pagination"]["total"] == sql_count(sync_engine, where, **sql_params)


async def test_sold_listings_only_when_asked(client: AsyncClient, sync_engine: Engine) -> None:
    body = await search(client, status="sold")
    with sync_engine.connect() as connection:
        sold = connection.execute(
            text("SELECT count(*) FROM listings WHERE status = 'sold'")
        ).scalar_one()
    assert body["meta"]["pagination"]["total"] == sold
    assert {item["status"] for item in body["data"]} == {"sold"}


async def test_sorting_by_price_pages_without_overlap(client: AsyncClient) -> None:
    first = await search(client, sort="price_asc", page_size=50)
    second = await search(client, sort="price_asc", page_size=50, page=2)
    prices = [item["price"] for item in first["data"] + second["data"]]
    assert prices == sorted(prices)
    vins = [item["vin"] for item in first["data"] + second["data"]]
    assert len(set(vins)) == 100
    descending = await search(client, sort="price_desc")
    top = [item["price"] for item in descending["data"]]
    assert top == sorted(top, reverse=True)


async def test_other_sorts(client: AsyncClient) -> None:
    by_miles = [x["mileage"] for x in (await search(client, sort="mileage_asc"))["data"]]
    assert by_miles == sorted(by_miles)
    by_year = [x["year"] for x in (await search(client, sort="year_desc"))["data"]]
    assert by_year == sorted(by_year, reverse=True)
    by_age = [x["days_on_market"] for x in (await search(client, sort="newest"))["data"]]
    assert by_age == sorted(by_age)


async def test_misspelled_make_and_model_still_find_them(client: AsyncClient) -> None:
    body = await search(client, q="toyta camry")
    assert body["meta"]["pagination"]["total"] > 0
    assert {(item["make"], item["model"]) for item in body["data"]} == {("Toyota", "Camry")}


async def test_page_past_the_end_is_empty_with_the_true_total(
    client: AsyncClient, sync_engine: Engine
) -> None:
    body = await search(client, page=100_000)
    assert body["data"] == []
    assert body["meta"]["pagination"]["total"] == sql_count(sync_engine)


async def test_zip_radius_agrees_with_sql(client: AsyncClient, sync_engine: Engine) -> None:
    with sync_engine.connect() as connection:
        zip_code = connection.execute(
            text(
                "SELECT d.zip FROM dealers d JOIN listings l"
                " ON l.dealer_id = d.id GROUP BY d.id ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
    import zipcodes

    (place,) = zipcodes.matching(zip_code)
    where = (
        "dealer_id IN (SELECT id FROM dealers WHERE earth_distance(ll_to_earth(:lat, :lon),"
        " ll_to_earth(latitude, longitude)) <= 100 * 1609.344)"
    )
    expected = sql_count(sync_engine, where, lat=float(place["lat"]), lon=float(place["long"]))
    body = await search(client, zip=zip_code, radius=100, sort="distance", page_size=100)
    assert body["meta"]["pagination"]["total"] == expected
    distances = [item["distance_miles"] for item in body["data"]]
    assert distances == sorted(distances)
    assert all(distance <= 100.05 for distance in distances)


async def test_facets_are_disjunctive_and_agree_with_sql(
    client: AsyncClient, sync_engine: Engine
) -> None:
    body = await search(client, make="Toyota", facets="make,body_style")
    facets = body["meta"]["facets"]["facets"]
    makes = {bucket["value"]: bucket["count"] for bucket in facets["make"]}
    # Choosing Toyota still shows the other makes' counts.
    assert makes["Toyota"] == body["meta"]["pagination"]["total"]
    assert makes["Honda"] == sql_count(sync_engine, "make = 'Honda'")
    bodies = {bucket["value"]: bucket["count"] for bucket in facets["body_style"]}
    assert bodies["suv"] == sql_count(sync_engine, "make = 'Toyota' AND body_style = 'suv'")


async def test_facets_endpoint_has_stats_and_histogram(
    client: AsyncClient, sync_engine: Engine
) -> None:
    response = await client.get("/api/v1/facets", params={"body_style": "pickup"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["total"] == sql_count(sync_engine, "body_style = 'pickup'")
    assert sum(bucket["count"] for bucket in data["price_histogram"]) == sql_count(
        sync_engine, "body_style = 'pickup' AND price IS NOT NULL"
    )
    with sync_engine.connect() as connection:
        low, high = connection.execute(
            text(
                "SELECT min(price), max(price) FROM listings"
                " WHERE status = 'active' AND body_style = 'pickup'"
            )
        ).one()
    assert data["stats"]["price"]["min"] == low
    assert data["stats"]["price"]["max"] == high
    styles = {b["value"]: b["count"] for b in data["facets"]["body_style"]}
    assert styles["sedan"] == sql_count(sync_engine, "body_style = 'sedan'")


async def test_filters_lists_makes_models_and_ranges(
    client: AsyncClient, sync_engine: Engine
) -> None:
    response = await client.get("/api/v1/filters")
    assert response.status_code == 200
    data = response.json()["data"]
    toyota = next(make for make in data["makes"] if make["name"] == "Toyota")
    assert toyota["count"] == sql_count(sync_engine, "make = 'Toyota'")
    assert sum(model["count"] for model in toyota["models"]) == toyota["count"]
    assert {"suv", "sedan"} <= {bucket["value"] for bucket in data["values"]["body_style"]}
    assert data["ranges"]["year"]["min"] >= 2008


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"zip": "00000"}, 400, "unknown ZIP code"),
        ({"zip": "1234"}, 422, "zip"),
        ({"year_min": 2022, "year_max": 2019}, 422, "year_min"),
        ({"price_min": 5000, "price_max": 10}, 422, "price_min"),
        ({"sort": "cheapest"}, 422, "sort"),
        ({"sort": "distance"}, 422, "zip"),
        ({"page_size": 101}, 422, "page_size"),
        ({"page": 0}, 422, "page"),
        ({"radius": 501, "zip": "10001"}, 422, "radius"),
        ({"body_style": "spaceship"}, 422, "body_style"),
        ({"facets": "make,wheels"}, 422, "wheels"),
        ({"year_min": "new"}, 422, "year_min"),
    ],
)
async def test_bad_parameters_get_clear_errors(
    client: AsyncClient, params: dict[str, Any], status: int, fragment: str
) -> None:
    response = await client.get("/api/v1/listings", params=params)
    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in (error["message"] + str(error["details"]))
