from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from carsearch.deps import DbSession
from carsearch.listings import service
from carsearch.listings.schemas import ListingDetail, PriceHistory
from carsearch.schemas import Envelope, error_responses

router = APIRouter(tags=["listings"])

# Checked by the service, not by FastAPI, so that a bad VIN gets a message that says what
# is wrong with it; the pattern documents the same rule (any case, surrounding spaces).
VinPath = Annotated[
    str,
    Path(
        description="the vehicle identification number: 17 characters, no I, O or Q; "
        "case and surrounding spaces don't matter",
        examples=["1HGCM82633A004352"],
        json_schema_extra={"pattern": r"^\s*[A-HJ-NPR-Za-hj-npr-z0-9]{17}\s*$"},
    ),
]


@router.get(
    "/listings/{vin}",
    summary="A listing",
    response_model=Envelope[ListingDetail],
    responses=error_responses(404, 422),
)
async def get_listing(session: DbSession, vin: VinPath) -> Envelope[ListingDetail]:
    """A listing in full: the car, its dealer, where it is listed, decoded specs and price."""
    return Envelope(data=await service.get_listing_detail(session, vin))


@router.get(
    "/listings/{vin}/history",
    summary="A listing's price history",
    response_model=Envelope[PriceHistory],
    responses=error_responses(404, 422),
)
async def get_listing_price_history(session: DbSession, vin: VinPath) -> Envelope[PriceHistory]:
    """Every price a listing has had, oldest first, with a summary of the changes."""
    return Envelope(data=await service.get_price_history(session, vin))
