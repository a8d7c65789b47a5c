"""All SQL of a single listing: the listing with its dealer, its sources, its prices."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.models import Dealer, Listing, ListingPriceHistory, ListingSource


async def listing_by_vin(session: AsyncSession, vin: str) -> Listing | None:
    result = await session.execute(select(Listing).where(Listing.vin == vin))
    return result.scalar_one_or_none()


async def listing_with_dealer_by_vin(
    session: AsyncSession, vin: str
) -> tuple[Listing, Dealer | None] | None:
    row = (
        await session.execute(
            select(Listing, Dealer)
            .outerjoin(Dealer, Dealer.id == Listing.dealer_id)
            .where(Listing.vin == vin)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def sources_of_listing(session: AsyncSession, listing_id: int) -> Sequence[ListingSource]:
    result = await session.execute(
        select(ListingSource)
        .where(ListingSource.listing_id == listing_id)
        .order_by(ListingSource.first_seen_at, ListingSource.id)
    )
    return result.scalars().all()


async def price_history_of_listing(
    session: AsyncSession, listing_id: int
) -> Sequence[ListingPriceHistory]:
    """Oldest first; rows observed at the same moment keep their insertion order."""
    result = await session.execute(
        select(ListingPriceHistory)
        .where(ListingPriceHistory.listing_id == listing_id)
        .order_by(ListingPriceHistory.observed_at, ListingPriceHistory.id)
    )
    return result.scalars().all()
