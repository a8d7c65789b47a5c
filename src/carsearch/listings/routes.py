from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from carsearch.deps import DbSession
from carsearch.errors import ServiceUnavailable
from carsearch.listings import service
from carsearch.listings.schemas import ListingDetail, PriceHistory
from carsearch.schemas import Envelope, error_responses
from carsearch.search.cache import through_cache

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
async def get_listing(request: Request, session: DbSession, vin: VinPath) -> Response:
    """A listing in full: the car, its dealer, where it is listed, decoded specs and price.

    Cached like searches (`X-Cache`): as fresh as the search index, at most a minute old.
    """
    vin = service.parse_vin(vin)

    async def compute() -> bytes:
        detail = await service.get_listing_detail(session, vin)
        return Envelope(data=detail).model_dump_json().encode()

    return await _cached(request, f"listing:{vin}", compute)


@router.get(
    "/listings/{vin}/history",
    summary="A listing's price history",
    response_model=Envelope[PriceHistory],
    responses=error_responses(404, 422),
)
async def get_listing_price_history(request: Request, session: DbSession, vin: VinPath) -> Response:
    """Every price a listing has had, oldest first, with a summary of the changes."""
    vin = service.parse_vin(vin)

    async def compute() -> bytes:
        history = await service.get_price_history(session, vin)
        return Envelope(data=history).model_dump_json().encode()

    return await _cached(request, f"history:{vin}", compute)


async def _cached(request: Request, key: str, compute: Callable[[], Awaitable[bytes]]) -> Response:
    """Through the response cache, keyed by the search index's version: a listing's page
    changes when a sync brings its change to search, so both stay consistent."""
    try:
        version = request.app.state.search_service.index_version()
    except ServiceUnavailable:
        version = "no-index"  # entries then live only for the cache's time to live
    body, hit = await through_cache(request.app.state.search_cache, version, key, compute)
    headers = {"X-Cache": "hit" if hit else "miss"}
    return Response(body, media_type="application/json", headers=headers)
