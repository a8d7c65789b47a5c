from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from carsearch.deps import DbSession
from carsearch.schemas import Envelope, Pagination, error_responses
from carsearch.search.schemas import (
    FacetResult,
    FilterOptions,
    SearchFilters,
    SearchMeta,
    SearchParams,
    SearchResponse,
)
from carsearch.search.service import SearchService, resolve_area, total_pages

router = APIRouter(tags=["search"])


def get_search_service(request: Request) -> SearchService:
    service: SearchService = request.app.state.search_service
    return service


Search = Annotated[SearchService, Depends(get_search_service)]


@router.get(
    "/listings",
    response_model=SearchResponse,
    responses=error_responses(400, 422, 503),
    summary="Search listings",
)
async def search_listings(
    params: Annotated[SearchParams, Query()], session: DbSession, search: Search
) -> SearchResponse:
    """Filter, sort and page listings; optionally count facets in the same response."""
    area = await resolve_area(session, params)
    page = search.search(params, area)
    pagination = Pagination(
        page=params.page,
        page_size=params.page_size,
        total=page.total,
        total_pages=total_pages(page.total, params.page_size),
    )
    return SearchResponse(
        data=page.results, meta=SearchMeta(pagination=pagination, facets=page.facets)
    )


@router.get(
    "/facets",
    response_model=Envelope[FacetResult],
    responses=error_responses(400, 422, 503),
    summary="Facet counts",
)
async def facet_counts(
    filters: Annotated[SearchFilters, Query()], session: DbSession, search: Search
) -> Envelope[FacetResult]:
    """Disjunctive counts for every facet, stats and a price histogram for these filters."""
    area = await resolve_area(session, filters)
    return Envelope(data=search.facets(filters, area))


@router.get(
    "/filters",
    response_model=Envelope[FilterOptions],
    responses=error_responses(503),
    summary="Filter options",
)
async def filter_options(search: Search) -> Envelope[FilterOptions]:
    """Everything a UI needs to draw its filters: makes and models, values, ranges."""
    return Envelope(data=search.filter_options())
