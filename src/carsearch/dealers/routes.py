from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from carsearch.dealers import service
from carsearch.dealers.schemas import DealerDetail, NearbyDealer
from carsearch.deps import DbSession
from carsearch.schemas import Envelope, Meta, error_responses

router = APIRouter(tags=["dealers"])

# Dealer ids are bigint: anything larger could never match and would fail in the database.
_MAX_DEALER_ID = 2**63 - 1


@router.get(
    "/dealers",
    summary="Dealers near a ZIP code",
    response_model=Envelope[list[NearbyDealer]],
    responses=error_responses(400, 422),
)
async def list_dealers_near_zip(
    session: DbSession,
    zip_code: Annotated[
        str,
        Query(
            alias="zip",
            pattern=r"^\d{5}$",
            description="5-digit US ZIP code; distances are measured from its centroid",
            examples=["90210"],
        ),
    ],
    radius: Annotated[
        int,
        Query(
            ge=service.MIN_RADIUS_MILES,
            le=service.MAX_RADIUS_MILES,
            description="search radius in whole miles",
            examples=[50],
        ),
    ] = service.DEFAULT_RADIUS_MILES,
    page: Annotated[
        int, Query(ge=1, le=service.MAX_PAGE, description="1-based page number", examples=[1])
    ] = 1,
    page_size: Annotated[
        int,
        Query(ge=1, le=service.MAX_PAGE_SIZE, description="dealers per page", examples=[24]),
    ] = service.DEFAULT_PAGE_SIZE,
) -> Envelope[list[NearbyDealer]]:
    """Dealers within a radius of a ZIP code, nearest first, with distance and active listings."""
    dealers, pagination = await service.find_dealers_near_zip(
        session, zip_code, radius_miles=radius, page=page, page_size=page_size
    )
    return Envelope(data=dealers, meta=Meta(pagination=pagination))


@router.get(
    "/dealers/{dealer_id}",
    summary="A dealer",
    response_model=Envelope[DealerDetail],
    responses=error_responses(404, 422),
)
async def get_dealer(
    session: DbSession,
    dealer_id: Annotated[
        int, Path(ge=1, le=_MAX_DEALER_ID, description="the dealer's id", examples=[412])
    ],
) -> Envelope[DealerDetail]:
    """A dealer's profile with the number of listings it has for sale."""
    return Envelope(data=await service.get_dealer(session, dealer_id))
