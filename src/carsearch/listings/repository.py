"""All SQL of a single listing: the listing with its dealer, its sources, its prices."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import ScalarSelect, Select, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.models import Dealer, Listing, ListingPriceHistory, ListingSource


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


async def listing_detail_by_vin(
    session: AsyncSession, vin: str
) -> tuple[Listing, Dealer | None, list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The listing, its dealer, its sources and its price history (oldest first), in one
    round trip: a listing page is the most requested thing after search."""
    row = (await session.execute(_detail_statement(), {"vin": vin})).one_or_none()
    return None if row is None else (row[0], row[1], row[2], row[3])


# Built once: composing these statements costs more than running them.
@cache
def _detail_statement() -> Select[Any]:
    return (
        select(Listing, Dealer, _sources_json(), _history_json())
        .outerjoin(Dealer, Dealer.id == Listing.dealer_id)
        .where(Listing.vin == bindparam("vin"))
    )


@cache
def _history_statement() -> Select[Any]:
    return select(Listing, _history_json()).where(Listing.vin == bindparam("vin"))


async def listing_with_history_by_vin(
    session: AsyncSession, vin: str
) -> tuple[Listing, list[dict[str, Any]]] | None:
    row = (await session.execute(_history_statement(), {"vin": vin})).one_or_none()
    return None if row is None else (row[0], row[1])
