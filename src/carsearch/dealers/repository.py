"""All SQL of dealers: profiles with inventory counts, and radius search on earthdistance."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ScalarSelect, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.dealers.geo import MILES_TO_METERS
from carsearch.listings.vocab import ListingStatus
from carsearch.models import Dealer, Listing

# earth_box is a bounding cube: cheap, answered by the GiST index ix_dealers_earth, and a
# little too generous, so the exact great-circle distance filters what it lets through.
# `ll_to_earth(d.latitude, d.longitude)` must stay written exactly as the index defines it.
DEALERS_WITHIN_SQL = text(
    """
    SELECT dealer_id, distance_miles
    FROM (
        SELECT d.id AS dealer_id,
               earth_distance(
                   ll_to_earth(:latitude, :longitude), ll_to_earth(d.latitude, d.longitude)
               ) / :meters_per_mile AS distance_miles
        FROM dealers AS d
        WHERE earth_box(ll_to_earth(:latitude, :longitude), :radius_meters)
              @> ll_to_earth(d.latitude, d.longitude)
    ) AS candidates
    WHERE distance_miles <= :radius_miles
    ORDER BY distance_miles, dealer_id
    """
)


def dealers_within_parameters(
    latitude: float, longitude: float, radius_miles: float
) -> dict[str, float]:
    """The bind parameters of DEALERS_WITHIN_SQL."""
    return {
        "latitude": float(latitude),
        "longitude": float(longitude),
        "radius_miles": float(radius_miles),
        "radius_meters": float(radius_miles) * MILES_TO_METERS,
        "meters_per_mile": MILES_TO_METERS,
    }


async def dealers_within(
    session: AsyncSession, latitude: float, longitude: float, radius_miles: float
) -> list[tuple[int, float]]:
    """(dealer_id, distance_miles) of every dealer within the radius, nearest first."""
    result = await session.execute(
        DEALERS_WITHIN_SQL, dealers_within_parameters(latitude, longitude, radius_miles)
    )
    return [(int(dealer_id), float(distance)) for dealer_id, distance in result]


def _active_listing_count() -> ScalarSelect[int]:
    return (
        select(func.count(Listing.id))
        .where(Listing.dealer_id == Dealer.id, Listing.status == ListingStatus.active)
        .correlate(Dealer)
        .scalar_subquery()
    )


async def dealer_with_active_listing_count(
    session: AsyncSession, dealer_id: int
) -> tuple[Dealer, int] | None:
    row = (
        await session.execute(select(Dealer, _active_listing_count()).where(Dealer.id == dealer_id))
    ).one_or_none()
    return None if row is None else (row[0], int(row[1]))


async def dealers_with_active_listing_counts(
    session: AsyncSession, dealer_ids: Sequence[int]
) -> dict[int, tuple[Dealer, int]]:
    """The dealers of `dealer_ids` that exist, by id, each with its active listing count."""
    if not dealer_ids:
        return {}
    rows = await session.execute(
        select(Dealer, _active_listing_count()).where(Dealer.id.in_(dealer_ids))
    )
    return {dealer.id: (dealer, int(count)) for dealer, count in rows}
