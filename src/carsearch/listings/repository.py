"""All SQL of a single listing: the listing with its dealer, its sources, its prices."""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import ScalarSelect, Select, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.appraisal.service import COMPARABLE_SOLD_DAYS
from carsearch.models import Dealer, Listing, ListingAppraisal, ListingPriceHistory, ListingSource

EXAMPLE_COMPARABLES = 5


def _sources_json() -> ScalarSelect[Any]:
    return (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            "source",
                            ListingSource.source,
                            "source_listing_id",
                            ListingSource.source_listing_id,
                            "url",
                            ListingSource.url,
                            "first_seen_at",
                            ListingSource.first_seen_at,
                            "last_seen_at",
                            ListingSource.last_seen_at,
                        ),
                        ListingSource.first_seen_at,
                        ListingSource.id,
                    )
                ),
                text("'[]'::json"),
            )
        )
        .where(ListingSource.listing_id == Listing.id)
        .scalar_subquery()
    )


def _history_json() -> ScalarSelect[Any]:
    return (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            "price",
                            ListingPriceHistory.price,
                            "mileage",
                            ListingPriceHistory.mileage,
                            "observed_at",
                            ListingPriceHistory.observed_at,
                        ),
                        ListingPriceHistory.observed_at,
                        ListingPriceHistory.id,
                    )
                ),
                text("'[]'::json"),
            )
        )
        .where(ListingPriceHistory.listing_id == Listing.id)
        .scalar_subquery()
    )


class ListingDetailRow(NamedTuple):
    listing: Listing
    dealer: Dealer | None
    sources: list[dict[str, Any]]
    history: list[dict[str, Any]]
    appraisal: ListingAppraisal | None


async def listing_detail_by_vin(session: AsyncSession, vin: str) -> ListingDetailRow | None:
    """The listing, its dealer, sources, price history (oldest first) and appraisal, in one
    round trip: a listing page is the most requested thing after search."""
    row = (await session.execute(_detail_statement(), {"vin": vin})).one_or_none()
    return None if row is None else ListingDetailRow(row[0], row[1], row[2], row[3], row[4])


# Built once: composing these statements costs more than running them.
@cache
def _detail_statement() -> Select[Any]:
    return (
        select(Listing, Dealer, _sources_json(), _history_json(), ListingAppraisal)
        .outerjoin(Dealer, Dealer.id == Listing.dealer_id)
        .outerjoin(ListingAppraisal, ListingAppraisal.listing_id == Listing.id)
        .where(Listing.vin == bindparam("vin"))
    )


# The closest comparables the appraisal read: the same model and market (new against new,
# used and certified against each other), priced, active or recently sold; the same trim
# first, then the nearest model year and mileage. The (make, model, year) index finds them.
_COMPARABLES = text(
    f"""
    SELECT c.vin, c.year, c.trim, c.mileage, c.price, c.condition, c.status,
           round(CAST(earth_distance(ll_to_earth(here.latitude, here.longitude),
                                     ll_to_earth(d.latitude, d.longitude)) / 1609.344
                      AS numeric), 1) AS distance_miles
    FROM listings c
    LEFT JOIN dealers d ON d.id = c.dealer_id
    LEFT JOIN dealers here ON here.id = :dealer_id
    WHERE c.make = :make AND c.model = :model AND c.id <> :listing_id AND c.price > 0
      AND (c.status = 'active'
           OR (c.status = 'sold' AND c.sold_at > now() - interval '{COMPARABLE_SOLD_DAYS} days'))
      AND (c.condition = 'new') = :is_new
      AND (c.mileage IS NOT NULL OR c.condition = 'new')
    ORDER BY c.trim IS NOT DISTINCT FROM :trim DESC, abs(c.year - :year),
             abs(coalesce(c.mileage, 0) - :mileage), c.id
    LIMIT {EXAMPLE_COMPARABLES}
    """
)


async def closest_comparables(session: AsyncSession, listing: Listing) -> list[dict[str, Any]]:
    rows = await session.execute(
        _COMPARABLES,
        {
            "make": listing.make,
            "model": listing.model,
            "listing_id": listing.id,
            "dealer_id": listing.dealer_id,
            "is_new": listing.condition == "new",
            "trim": listing.trim,
            "year": listing.year,
            "mileage": listing.mileage or 0,
        },
    )
    return [dict(row._mapping) for row in rows]


@cache
def _history_statement() -> Select[Any]:
    return select(Listing, _history_json()).where(Listing.vin == bindparam("vin"))


async def listing_with_history_by_vin(
    session: AsyncSession, vin: str
) -> tuple[Listing, list[dict[str, Any]]] | None:
    row = (await session.execute(_history_statement(), {"vin": vin})).one_or_none()
    return None if row is None else (row[0], row[1])
