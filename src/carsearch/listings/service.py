"""Listing rules: VIN input, a listing's detail, and its price history summed up."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.dealers.service import dealer_profile
from carsearch.errors import InvalidInput, NotFound
from carsearch.listings import repository
from carsearch.listings.schemas import (
    ComparableListing,
    DealExplanation,
    ListingDetail,
    ListingSourceEntry,
    PriceHistory,
    PricePoint,
    PriceSummary,
)
from carsearch.listings.vin import has_vin_shape, normalize_vin
from carsearch.listings.vocab import ListingStatus
from carsearch.models import Listing, ListingAppraisal

_FORBIDDEN_VIN_LETTERS = frozenset("IOQ")
_SHOWN_INPUT_LIMIT = 40


def parse_vin(raw: str) -> str:
    """The VIN in its stored form (trimmed, upper case), or InvalidInput saying what is wrong."""
    vin = normalize_vin(raw)
    if has_vin_shape(vin):
        return vin
    if len(vin) != 17:
        reason = f"a VIN has 17 characters, this one has {len(vin)}"
    elif _FORBIDDEN_VIN_LETTERS & set(vin):
        reason = "a VIN never contains the letters I, O or Q"
    else:
        reason = "a VIN has only the letters A-Z (without I, O, Q) and the digits 0-9"
    shown = vin if len(vin) <= _SHOWN_INPUT_LIMIT else vin[:_SHOWN_INPUT_LIMIT] + "..."
    raise InvalidInput(
        f"invalid VIN {shown!r}: {reason}",
        details=[{"loc": ["path", "vin"], "message": reason, "type": "vin_format"}],
    )


def days_on_market(listing: Listing, now: datetime) -> int:
    return market_days(
        listing.first_seen_at, listing.sold_at, listing.status, listing.last_seen_at, now
    )


def market_days(
    first_seen_at: datetime,
    sold_at: datetime | None,
    status: str,
    last_seen_at: datetime,
    now: datetime,
) -> int:
    """Whole days from first seen to sold; to now while for sale."""
    if sold_at is not None:
        end = sold_at
    elif status == ListingStatus.removed:
        # A withdrawn listing stopped counting when it was last seen, not today.
        end = last_seen_at
    else:
        end = now
    return max(0, (end - first_seen_at) // timedelta(days=1))


def summarize_price_history(points: Sequence[PricePoint], days_on_market: int) -> PriceSummary:
    """The summary of `points`, which must be oldest first."""
    if not points:
        return PriceSummary(
            first_price=None,
            current_price=None,
            lowest_price=None,
            highest_price=None,
            total_change=None,
            total_change_percent=None,
            number_of_changes=0,
            days_on_market=days_on_market,
            last_change_at=None,
        )
    prices = [point.price for point in points]
    first_price, current_price = prices[0], prices[-1]
    total_change = current_price - first_price
    return PriceSummary(
        first_price=first_price,
        current_price=current_price,
        lowest_price=min(prices),
        highest_price=max(prices),
        total_change=total_change,
        total_change_percent=(round(100 * total_change / first_price, 2) if first_price else None),
        number_of_changes=len(points) - 1,
        days_on_market=days_on_market,
        last_change_at=points[-1].observed_at if len(points) > 1 else None,
    )


async def get_listing_detail(
    session: AsyncSession, raw_vin: str, *, now: datetime | None = None
) -> ListingDetail:
    vin = parse_vin(raw_vin)
    found = await repository.listing_detail_by_vin(session, vin)
    if found is None:
        raise NotFound(f"no listing with VIN {vin}")
    listing, dealer, sources, history, appraisal = found
    points = [PricePoint.model_validate(point) for point in history]
    market_days = days_on_market(listing, now or datetime.now(UTC))
    return ListingDetail(
        vin=listing.vin,
        status=listing.status,
        condition=listing.condition,
        year=listing.year,
        make=listing.make,
        model=listing.model,
        trim=listing.trim,
        body_style=listing.body_style,
        drivetrain=listing.drivetrain,
        fuel_type=listing.fuel_type,
        transmission=listing.transmission,
        engine=listing.engine,
        exterior_color=listing.exterior_color,
        interior_color=listing.interior_color,
        mileage=listing.mileage,
        price=listing.price,
        msrp=listing.msrp,
        images=list(listing.images),
        features=list(listing.features),
        description=listing.description,
        first_seen_at=listing.first_seen_at,
        last_seen_at=listing.last_seen_at,
        sold_at=listing.sold_at,
        days_on_market=market_days,
        dealer=None if dealer is None else dealer_profile(dealer),
        sources=[ListingSourceEntry.model_validate(source) for source in sources],
        specs=listing.vin_decoded,
        price_summary=summarize_price_history(points, market_days),
        deal=await _deal_explanation(session, listing, appraisal),
    )


async def _deal_explanation(
    session: AsyncSession, listing: Listing, appraisal: ListingAppraisal | None
) -> DealExplanation | None:
    if appraisal is None:
        return None
    examples = (
        await repository.closest_comparables(session, listing)
        if appraisal.estimate is not None
        else []
    )
    return DealExplanation(
        rating=appraisal.rating,
        reason=appraisal.reason,
        estimate=appraisal.estimate,
        difference=appraisal.difference,
        percent=appraisal.percent,
        comparables=appraisal.comparables,
        appraised_at=appraisal.appraised_at,
        examples=[ComparableListing.model_validate(row) for row in examples],
    )


async def get_price_history(
    session: AsyncSession, raw_vin: str, *, now: datetime | None = None
) -> PriceHistory:
    vin = parse_vin(raw_vin)
    found = await repository.listing_with_history_by_vin(session, vin)
    if found is None:
        raise NotFound(f"no listing with VIN {vin}")
    listing, history = found
    points = [PricePoint.model_validate(point) for point in history]
    summary = summarize_price_history(points, days_on_market(listing, now or datetime.now(UTC)))
    return PriceHistory(vin=listing.vin, points=points, summary=summary)
