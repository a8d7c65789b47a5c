"""Deal ratings as shoppers see them: in search (filter, sort, facet) and on the listing page."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.appraisal.estimator import MIN_COMPARABLES, rating_for_percent

pytestmark = pytest.mark.usefixtures("seeded")

TIERS = ["great", "good", "fair", "high", "overpriced"]


async def get(client: AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sql_ratings(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT a.rating, count(*) FROM listing_appraisals a"
                " JOIN listings l ON l.id = a.listing_id WHERE l.status = 'active'"
                " GROUP BY a.rating"
            )
        ).all()
    return {rating: count for rating, count in rows}


async def test_deal_rating_is_a_facet_that_agrees_with_the_database(
    client: AsyncClient, sync_engine: Engine
) -> None:
    body = await get(client, "/api/v1/listings", facets="deal_rating", page_size=1)
    buckets = {b["value"]: b["count"] for b in body["meta"]["facets"]["facets"]["deal_rating"]}
    assert buckets == sql_ratings(sync_engine)
    # Every active listing of the seed was appraised.
    assert sum(buckets.values()) == body["meta"]["pagination"]["total"]


async def test_filter_by_several_ratings(client: AsyncClient, sync_engine: Engine) -> None:
    expected = sql_ratings(sync_engine)
    body = await get(
        client, "/api/v1/listings", deal_rating=["great", "good"], page_size=100, sort="price_asc"
    )
    assert body["meta"]["pagination"]["total"] == expected["great"] + expected["good"]
    assert {item["deal"]["rating"] for item in body["data"]} <= {"great", "good"}
    for item in body["data"]:
        deal = item["deal"]
        assert deal["percent"] <= -5
        assert rating_for_percent(deal["percent"]) == deal["rating"]
        assert deal["percent"] == pytest.approx(
            100 * (item["price"] - deal["estimate"]) / deal["estimate"], abs=0.06
        )


async def test_best_deal_sorts_furthest_below_market_first_and_unrated_last(
    client: AsyncClient, sync_engine: Engine
) -> None:
    first = await get(client, "/api/v1/listings", sort="best_deal", page_size=100)
    percents = [item["deal"]["percent"] for item in first["data"]]
    assert percents == sorted(percents)
    assert first["data"][0]["deal"]["rating"] == "great"

    total = first["meta"]["pagination"]["total"]
    last_page = (total + 99) // 100
    last = await get(client, "/api/v1/listings", sort="best_deal", page_size=100, page=last_page)
    assert last["data"][-1]["deal"]["rating"] == "none"
    assert last["data"][-1]["deal"]["percent"] is None
    # Rated listings come before every unrated one.
    ratings = [item["deal"]["rating"] for item in last["data"]]
    assert ratings == sorted(ratings, key=lambda rating: rating == "none")


async def test_filters_endpoint_lists_ratings_and_the_sort(client: AsyncClient) -> None:
    body = await get(client, "/api/v1/filters")
    values = {b["value"] for b in body["data"]["values"]["deal_rating"]}
    assert set(TIERS) <= values
    assert "best_deal" in body["data"]["sorts"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"deal_rating": "bargain"}, "deal_rating"),
        ({"deal_rating": ""}, "deal_rating"),
        ({"sort": "best_deals"}, "sort"),
        ({"facets": "deal"}, "unknown facet 'deal'"),
    ],
)
async def test_bad_deal_input_is_a_clear_422(
    client: AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get("/api/v1/listings", params=params)
    assert response.status_code == 422
    assert message in response.json()["error"]["message"]


async def _listing_with(session: AsyncSession, where: str) -> dict[str, Any]:
    row = (
        await session.execute(
            text(
                "SELECT l.id, l.vin, l.make, l.model, l.price, l.condition, a.*"
                " FROM listings l JOIN listing_appraisals a ON a.listing_id = l.id"
                f" WHERE l.status = 'active' AND {where} ORDER BY l.id LIMIT 1"
            )
        )
    ).one()
    return dict(row._mapping)


async def test_listing_page_explains_a_rating(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    stored = await _listing_with(db_session, "a.rating <> 'none' AND l.dealer_id IS NOT NULL")
    body = await get(client, f"/api/v1/listings/{stored['vin']}")
    deal = body["data"]["deal"]
    assert deal["rating"] == stored["rating"]
    assert deal["reason"] is None
    assert deal["estimate"] == stored["estimate"]
    assert deal["difference"] == stored["price"] - stored["estimate"]
    assert deal["percent"] == pytest.approx(100 * deal["difference"] / deal["estimate"], abs=0.06)
    # The fit needs MIN_COMPARABLES listings; the listing itself is held out of its own.
    assert deal["comparables"] == stored["comparables"] >= MIN_COMPARABLES - 1

    examples = deal["examples"]
    assert 1 <= len(examples) <= 5
    assert stored["vin"] not in {e["vin"] for e in examples}  # never its own comparable
    vins = [e["vin"] for e in examples]
    rows = (
        await db_session.execute(
            text("SELECT vin, make, model, price, condition FROM listings WHERE vin = ANY(:v)"),
            {"v": vins},
        )
    ).all()
    assert len(rows) == len(vins)
    for _vin, make, model, price, condition in rows:
        assert (make, model) == (stored["make"], stored["model"])
        assert price > 0
        assert (condition == "new") == (stored["condition"] == "new")
    assert all(e["distance_miles"] is None or e["distance_miles"] >= 0 for e in examples)


@pytest.mark.parametrize("reason", ["rare_model", "no_price", "new_car", "too_few_comparables"])
async def test_listing_page_says_why_there_is_no_rating(
    client: AsyncClient, db_session: AsyncSession, reason: str
) -> None:
    stored = await _listing_with(db_session, f"a.reason = '{reason}'")
    deal = (await get(client, f"/api/v1/listings/{stored['vin']}"))["data"]["deal"]
    assert deal["rating"] == "none"
    assert deal["reason"] == reason
    assert deal["difference"] is None
    assert deal["percent"] is None
    if deal["estimate"] is None:
        assert deal["examples"] == []


async def test_a_listing_not_yet_appraised_has_no_deal(
    client: AsyncClient, db_session: AsyncSession
) -> None:
    stored = await _listing_with(db_session, "TRUE")
    await db_session.execute(
        text("DELETE FROM listing_appraisals WHERE listing_id = :id"), {"id": stored["id"]}
    )
    body = await get(client, f"/api/v1/listings/{stored['vin']}")
    assert body["data"]["deal"] is None
