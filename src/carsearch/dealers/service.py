"""Dealer rules: a dealer's profile, and dealers near a ZIP code, paged."""

from __future__ import annotations

import math
from typing import Any

from anyio import to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.dealers import repository
from carsearch.dealers.geo import zip_centroid
from carsearch.dealers.schemas import DealerDetail, DealerProfile, NearbyDealer
from carsearch.errors import BadRequest, NotFound
from carsearch.models import Dealer
from carsearch.schemas import Pagination

DEFAULT_RADIUS_MILES = 50
MIN_RADIUS_MILES = 1
MAX_RADIUS_MILES = 500
DEFAULT_PAGE_SIZE = 24
MAX_PAGE_SIZE = 100
# Deeper pages of a radius search are never browsed; the cap keeps OFFSET arithmetic sane.
MAX_PAGE = 10_000


def dealer_profile(dealer: Dealer) -> DealerProfile:
    return DealerProfile.model_validate(dealer)


def _profile_fields(dealer: Dealer) -> dict[str, Any]:
    return dealer_profile(dealer).model_dump()


async def get_dealer(session: AsyncSession, dealer_id: int) -> DealerDetail:
    found = await repository.dealer_with_active_listing_count(session, dealer_id)
    if found is None:
        raise NotFound(f"no dealer with id {dealer_id}")
    dealer, active_listing_count = found
    return DealerDetail(**_profile_fields(dealer), active_listing_count=active_listing_count)


async def find_dealers_near_zip(
    session: AsyncSession,
    zip_code: str,
    *,
    radius_miles: int = DEFAULT_RADIUS_MILES,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[NearbyDealer], Pagination]:
    """Dealers within `radius_miles` of the ZIP code's centroid, nearest first."""
    # The first lookup reads the whole ZIP table (about a second): keep it off the event loop.
    centroid = await to_thread.run_sync(zip_centroid, zip_code)
    if centroid is None:
        raise BadRequest(
            "unknown ZIP code",
            details=[{"loc": ["query", "zip"], "message": f"no US ZIP code {zip_code}"}],
        )
    within = await repository.dealers_within(
        session, centroid.latitude, centroid.longitude, radius_miles
    )
    start = (page - 1) * page_size
    on_page = within[start : start + page_size]
    dealers = await repository.dealers_with_active_listing_counts(
        session, [dealer_id for dealer_id, _ in on_page]
    )
    nearby = [
        NearbyDealer(
            **_profile_fields(dealers[dealer_id][0]),
            active_listing_count=dealers[dealer_id][1],
            distance_miles=round(distance_miles, 2),
        )
        for dealer_id, distance_miles in on_page
        # A dealer deleted between the two queries is left out, not an error.
        if dealer_id in dealers
    ]
    pagination = Pagination(
        page=page,
        page_size=page_size,
        total=len(within),
        total_pages=math.ceil(len(within) / page_size),
    )
    return nearby, pagination
