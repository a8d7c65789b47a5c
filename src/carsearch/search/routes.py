from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from carsearch.deps import DbSession
from carsearch.observability.metrics import SEARCH_DURATION
from carsearch.schemas import Envelope, Pagination, error_responses
from carsearch.search.analytics import SearchEvent, SearchLog
from carsearch.search.cache import cache_key, through_cache
from carsearch.search.schemas import (
    FacetResult,
    FilterOptions,
    SearchFilters,
    SearchMeta,
    SearchParams,
    SearchResponse,
    SearchStatus,
)
from carsearch.search.service import SearchService, search_status, total_pages

router = APIRouter(tags=["search"])

JSON = "application/json"


def get_search_service(request: Request) -> SearchService:
    service: SearchService = request.app.state.search_service
    return service


Search = Annotated[SearchService, Depends(get_search_service)]


async def _answer(
    request: Request,
    search: SearchService,
    endpoint: str,
    filters: SearchFilters | None,
    compute: Callable[[], Awaitable[tuple[BaseModel, int]]],
) -> Response:
    """The cached body when there is one, else computed and cached; the search logged.

    Entries are `<total>\\n<json body>` so a hit can be logged with its result count
    without parsing the body.
    """
    started = time.perf_counter()

    async def entry_of() -> bytes:
        model, total = await compute()
        return b"%d\n" % total + model.model_dump_json().encode()

    entry, hit = await through_cache(
        request.app.state.search_cache,
        search.index_version(),
        cache_key(endpoint, filters.normalized() if filters is not None else {}),
        entry_of,
    )
    head, _, body = entry.partition(b"\n")
    log: SearchLog | None = request.app.state.search_log
    if log is not None and filters is not None:
        log.record(
            SearchEvent.of(
                endpoint,
                filters,
                result_count=int(head),
                latency_ms=(time.perf_counter() - started) * 1000,
                cached=hit,
            )
        )
    return Response(body, media_type=JSON, headers={"X-Cache": "hit" if hit else "miss"})


@router.get(
    "/listings",
    response_model=SearchResponse,
    responses=error_responses(400, 422, 503),
    summary="Search listings",
)
async def search_listings(
    request: Request, params: Annotated[SearchParams, Query()], session: DbSession, search: Search
) -> Response:
    """Filter, sort and page listings; optionally count facets in the same response.

    Common queries are answered from a cache keyed by the normalized query and the index
    version (`X-Cache: hit` or `miss`); any change to the index invalidates it.
    """

    async def compute() -> tuple[BaseModel, int]:
        area = await search.area(session, params)
        with SEARCH_DURATION.labels("search").time():
            page = search.search(params, area)
        pagination = Pagination(
            page=params.page,
            page_size=params.page_size,
            total=page.total,
            total_pages=total_pages(page.total, params.page_size),
        )
        meta = SearchMeta(pagination=pagination, facets=page.facets)
        return SearchResponse(data=page.results, meta=meta), page.total

    return await _answer(request, search, "listings", params, compute)


@router.get(
    "/facets",
    response_model=Envelope[FacetResult],
    responses=error_responses(400, 422, 503),
    summary="Facet counts",
)
async def facet_counts(
    request: Request,
    filters: Annotated[SearchFilters, Query()],
    session: DbSession,
    search: Search,
) -> Response:
    """Disjunctive counts for every facet, stats and a price histogram for these filters."""

    async def compute() -> tuple[BaseModel, int]:
        area = await search.area(session, filters)
        with SEARCH_DURATION.labels("facets").time():
            result = search.facets(filters, area)
        return Envelope(data=result), result.total

    return await _answer(request, search, "facets", filters, compute)


@router.get(
    "/filters",
    response_model=Envelope[FilterOptions],
    responses=error_responses(503),
    summary="Filter options",
)
async def filter_options(request: Request, search: Search) -> Response:
    """Everything a UI needs to draw its filters: makes and models, values, ranges."""

    async def compute() -> tuple[BaseModel, int]:
        with SEARCH_DURATION.labels("filters").time():
            options = search.filter_options()
        return Envelope(data=options), sum(make.count for make in options.makes)

    return await _answer(request, search, "filters", None, compute)


@router.get(
    "/search/status",
    response_model=Envelope[SearchStatus],
    responses=error_responses(503),
    summary="Search index status",
)
async def index_status(
    request: Request, session: DbSession, search: Search
) -> Envelope[SearchStatus]:
    """How current the index is (sync lag), and how the response cache is doing."""
    return Envelope(
        data=await search_status(
            session, search, request.app.state.search_cache, request.app.state.search_log
        )
    )
