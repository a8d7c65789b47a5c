"""Search rules: filters in; results, totals, facets and filter options out. No HTTP."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import tantivy
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.dealers.geo import zip_centroid
from carsearch.dealers.repository import dealers_within
from carsearch.errors import BadRequest, ServiceUnavailable
from carsearch.listings.vocab import ListingStatus
from carsearch.search.analytics import SearchLog
from carsearch.search.cache import ResponseCache
from carsearch.search.query import build_query, summary_from_document
from carsearch.search.repository import oldest_change_after_async
from carsearch.search.schemas import (
    FACET_FIELDS,
    AnalyticsStatus,
    CacheStatus,
    FacetBucket,
    FacetResult,
    FilterOptions,
    HistogramBucket,
    IndexStatus,
    ListingSummary,
    MakeFilter,
    ModelCount,
    NumericStats,
    Range,
    SearchFilters,
    SearchParams,
    SearchStatus,
    SortOrder,
)
from carsearch.search.store import IndexMissing, IndexOutdated, IndexReader

PRICE_BUCKET = 5_000
TERMS_SIZE = 2_000
_SORT_FIELDS: dict[SortOrder, tuple[str, tantivy.Order]] = {
    SortOrder.price_asc: ("sort_price", tantivy.Order.Asc),
    SortOrder.price_desc: ("sort_price", tantivy.Order.Desc),
    SortOrder.mileage_asc: ("sort_mileage", tantivy.Order.Asc),
    SortOrder.year_desc: ("sort_year", tantivy.Order.Desc),
    SortOrder.newest: ("sort_newest", tantivy.Order.Desc),
    SortOrder.best_deal: ("sort_deal", tantivy.Order.Asc),
}
_ENUM_FIELDS = (
    "body_style",
    "drivetrain",
    "fuel_type",
    "transmission",
    "exterior_color",
    "interior_color",
    "condition",
    "deal_rating",
)


@dataclass(frozen=True, slots=True)
class Area:
    """A ZIP radius resolved to the dealers inside it."""

    origin: tuple[float, float]
    dealers: list[tuple[int, float]]  # (dealer id, miles), nearest first

    @property
    def dealer_ids(self) -> list[int]:
        return [dealer_id for dealer_id, _ in self.dealers]


@dataclass(frozen=True, slots=True)
class SearchPage:
    results: list[ListingSummary]
    total: int
    facets: FacetResult | None
    index_version: str


class AreaCache:
    """Dealers within a radius of a ZIP, remembered for a while: dealers seldom move or
    open, and the lookup costs 8 to 20 ms at a million listings. A dealer that appears is
    found by radius searches within `ttl_seconds`."""

    def __init__(self, ttl_seconds: float = 300, max_entries: int = 2_048) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int], tuple[float, Area]] = OrderedDict()

    async def resolve(self, session: AsyncSession, filters: SearchFilters) -> Area | None:
        if filters.zip is None:
            return None
        key = (filters.zip, filters.radius)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and cached[0] > now:
            self._entries.move_to_end(key)
            return cached[1]
        area = await resolve_area(session, filters)
        assert area is not None
        self._entries[key] = (now + self.ttl_seconds, area)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return area


async def resolve_area(session: AsyncSession, filters: SearchFilters) -> Area | None:
    if filters.zip is None:
        return None
    centroid = zip_centroid(filters.zip)
    if centroid is None:
        raise BadRequest("unknown ZIP code", details=[{"zip": filters.zip}])
    dealers = await dealers_within(session, centroid.latitude, centroid.longitude, filters.radius)
    return Area(origin=(centroid.latitude, centroid.longitude), dealers=dealers)


class SearchService:
    def __init__(self, reader: IndexReader, areas: AreaCache | None = None) -> None:
        self.reader = reader
        self.areas = areas or AreaCache()

    async def area(self, session: AsyncSession, filters: SearchFilters) -> Area | None:
        """The dealers a ZIP radius covers (None without a ZIP); 400 for an unknown ZIP."""
        return await self.areas.resolve(session, filters)

    def open(self) -> tuple[tantivy.Index, tantivy.Searcher, str]:
        try:
            return self.reader.searcher()
        except IndexOutdated:
            raise ServiceUnavailable(
                "the search index was built by an older CarSearch; run `carsearch reindex`"
            ) from None
        except IndexMissing:
            raise ServiceUnavailable(
                "the search index is not built yet; run `carsearch reindex`"
            ) from None

    def index_version(self) -> str:
        return self.open()[2]

    # -- search ----------------------------------------------------------------------

    def search(self, params: SearchParams, area: Area | None) -> SearchPage:
        index, searcher, version = self.open()
        schema = index.schema
        filters = params.filters()
        dealer_ids = area.dealer_ids if area is not None else None
        query = build_query(schema, filters, dealer_ids=dealer_ids)
        offset = (params.page - 1) * params.page_size
        now = datetime.now(UTC)
        origin = area.origin if area is not None else None
        if params.sort is SortOrder.distance and area is not None:
            total = _count(searcher, query)
            documents = (
                self._by_distance(searcher, schema, filters, area, offset, params.page_size)
                if offset < total
                else []
            )
        else:
            # One pass finds the page and counts the matches.
            documents, total = self._sorted(searcher, query, params, offset)
        results = [summary_from_document(doc, now=now, origin=origin) for doc in documents]
        facets = None
        if params.facet_names:
            facets = self._facets(searcher, schema, filters, dealer_ids, params.facet_names, total)
        return SearchPage(results=results, total=total, facets=facets, index_version=version)

    def _sorted(
        self, searcher: tantivy.Searcher, query: tantivy.Query, params: SearchParams, offset: int
    ) -> tuple[list[dict[str, list[Any]]], int]:
        sort = params.sort
        if sort is SortOrder.relevance and not params.q:
            sort = SortOrder.newest  # no words to rank by: freshest first
        if sort is SortOrder.relevance:
            result = searcher.search(query, limit=params.page_size, offset=offset, count=True)
        else:
            field, order = _SORT_FIELDS[sort]
            result = searcher.search(
                query,
                limit=params.page_size,
                offset=offset,
                count=True,
                order_by_field=field,
                order=order,
            )
        documents = [searcher.doc(address).to_dict() for _, address in result.hits]
        return documents, _count_of(result)

    def _by_distance(
        self,
        searcher: tantivy.Searcher,
        schema: tantivy.Schema,
        filters: SearchFilters,
        area: Area,
        offset: int,
        limit: int,
    ) -> list[dict[str, list[Any]]]:
        """Nearest dealers first; within a dealer, newest first.

        Counts per dealer tell which dealers cover the requested page, so only their
        listings are read.
        """
        query = build_query(schema, filters, dealer_ids=area.dealer_ids)
        counts = self._terms(searcher, query, "dealer_id", size=len(area.dealers) or 1)
        documents: list[dict[str, list[Any]]] = []
        skipped = 0
        for dealer_id, _miles in area.dealers:
            available = counts.get(str(dealer_id), 0)
            if not available:
                continue
            if skipped + available <= offset:
                skipped += available
                continue
            start = max(0, offset - skipped)
            wanted = limit - len(documents)
            dealer_query = build_query(schema, filters, dealer_ids=[dealer_id])
            hits = searcher.search(
                dealer_query,
                limit=wanted,
                offset=start,
                count=False,
                order_by_field="sort_newest",
                order=tantivy.Order.Desc,
            ).hits
            documents.extend(searcher.doc(address).to_dict() for _, address in hits)
            skipped += available
            if len(documents) >= limit:
                break
        return documents

    # -- alerts ----------------------------------------------------------------------

    def matching_ids(
        self,
        filters: SearchFilters,
        area: Area | None,
        *,
        first_seen_after: datetime | None = None,
        first_seen_until: datetime | None = None,
        among: Sequence[int] | None = None,
        limit: int = 100,
    ) -> tuple[list[int], int]:
        """Listing ids matching `filters` (newest first, at most `limit`) and how many match:
        for alerts, first seen in a window, or among given listings."""
        index, searcher, _version = self.open()
        schema = index.schema
        query = build_query(schema, filters, dealer_ids=area.dealer_ids if area else None)
        extra: list[tantivy.Query] = []
        if first_seen_after is not None or first_seen_until is not None:
            extra.append(
                tantivy.Query.range_query(
                    schema,
                    "first_seen",
                    tantivy.FieldType.Integer,
                    int(first_seen_after.timestamp()) + 1 if first_seen_after else None,
                    int(first_seen_until.timestamp()) if first_seen_until else None,
                )
            )
        if among is not None:
            if not among:
                return [], 0
            extra.append(tantivy.Query.term_set_query(schema, "id", list(among)))
        if extra:
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, clause) for clause in (query, *extra)]
            )
        result = searcher.search(
            query,
            limit=max(1, limit),
            count=True,
            order_by_field="sort_newest",
            order=tantivy.Order.Desc,
        )
        ids = [int(searcher.doc(address).to_dict()["id"][0]) for _, address in result.hits]
        return ids[:limit], _count_of(result)

    # -- facets ----------------------------------------------------------------------

    @staticmethod
    def _terms(
        searcher: tantivy.Searcher, query: tantivy.Query, field: str, size: int = TERMS_SIZE
    ) -> dict[str, int]:
        result = searcher.aggregate(query, {field: {"terms": {"field": field, "size": size}}})
        return {_key(bucket["key"]): bucket["doc_count"] for bucket in result[field]["buckets"]}

    def _facets(
        self,
        searcher: tantivy.Searcher,
        schema: tantivy.Schema,
        filters: SearchFilters,
        dealer_ids: Sequence[int] | None,
        names: Sequence[str],
        total: int,
    ) -> FacetResult:
        query = build_query(schema, filters, dealer_ids=dealer_ids)
        # Facets without an active filter share one pass over the full query; a facet
        # whose field is filtered is counted with every filter but its own.
        shared = [name for name in names if not getattr(filters, name)]
        own = [name for name in names if getattr(filters, name)]
        aggregations: dict[str, Any] = {
            name: {"terms": {"field": name, "size": TERMS_SIZE}} for name in shared
        }
        for field in ("price", "mileage", "year"):
            aggregations[f"stats_{field}"] = {"stats": {"field": field}}
        aggregations["price_histogram"] = {
            "histogram": {"field": "price", "interval": PRICE_BUCKET, "min_doc_count": 1}
        }
        result = searcher.aggregate(query, aggregations)
        facets = {name: _buckets(result[name]["buckets"]) for name in shared}
        for name in own:
            unfiltered = build_query(schema, filters, dealer_ids=dealer_ids, without=name)
            facet = searcher.aggregate(
                unfiltered, {name: {"terms": {"field": name, "size": TERMS_SIZE}}}
            )
            facets[name] = _buckets(facet[name]["buckets"])
        return FacetResult(
            facets={name: facets[name] for name in names},
            stats={
                field: _stats(result[f"stats_{field}"]) for field in ("price", "mileage", "year")
            },
            price_histogram=[
                HistogramBucket(
                    low=int(bucket["key"]),
                    high=int(bucket["key"]) + PRICE_BUCKET,
                    count=bucket["doc_count"],
                )
                for bucket in result["price_histogram"]["buckets"]
                if bucket["doc_count"]
            ],
            total=total,
        )

    def facets(self, filters: SearchFilters, area: Area | None) -> FacetResult:
        index, searcher, _version = self.open()
        dealer_ids = area.dealer_ids if area is not None else None
        query = build_query(index.schema, filters, dealer_ids=dealer_ids)
        total = _count(searcher, query)
        return self._facets(searcher, index.schema, filters, dealer_ids, FACET_FIELDS, total)

    def filter_options(self) -> FilterOptions:
        index, searcher, _version = self.open()
        active = SearchFilters(status=[ListingStatus.active])
        query = build_query(index.schema, active)
        aggregations: dict[str, Any] = {
            "make_model": {"terms": {"field": "make_model", "size": 10_000}},
            "make": {"terms": {"field": "make", "size": TERMS_SIZE}},
            **{name: {"terms": {"field": name, "size": TERMS_SIZE}} for name in _ENUM_FIELDS},
            **{f"stats_{f}": {"stats": {"field": f}} for f in ("price", "mileage", "year")},
        }
        result = searcher.aggregate(query, aggregations)
        models: dict[str, list[ModelCount]] = {}
        for bucket in result["make_model"]["buckets"]:
            make, _, model = str(bucket["key"]).partition("\t")
            models.setdefault(make, []).append(ModelCount(name=model, count=bucket["doc_count"]))
        makes = [
            MakeFilter(
                name=str(bucket["key"]),
                count=bucket["doc_count"],
                models=sorted(models.get(str(bucket["key"]), []), key=lambda m: m.name),
            )
            for bucket in result["make"]["buckets"]
        ]
        makes.sort(key=lambda make: make.name)
        return FilterOptions(
            makes=makes,
            values={name: _buckets(result[name]["buckets"]) for name in _ENUM_FIELDS},
            ranges={
                field: Range(
                    min=_int_or_none(result[f"stats_{field}"].get("min")),
                    max=_int_or_none(result[f"stats_{field}"].get("max")),
                )
                for field in ("price", "mileage", "year")
            },
            sorts=list(SortOrder),
        )


def _count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    return _count_of(searcher.search(query, limit=1, count=True))


def _count_of(result: tantivy.SearchResult) -> int:
    count: int | None = result.count  # type: ignore[attr-defined]  # the stubs lack it
    return count or 0


def _key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _buckets(raw: list[dict[str, Any]]) -> list[FacetBucket]:
    return [FacetBucket(value=_key(b["key"]), count=b["doc_count"]) for b in raw]


def _int_or_none(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _stats(raw: dict[str, Any]) -> NumericStats:
    def clean(value: Any) -> float | None:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return round(float(value), 2)

    return NumericStats(
        min=clean(raw.get("min")), max=clean(raw.get("max")), avg=clean(raw.get("avg"))
    )


async def search_status(
    session: AsyncSession,
    service: SearchService,
    cache: ResponseCache | None,
    log: SearchLog | None,
) -> SearchStatus:
    _index, searcher, version = service.open()
    state = service.reader.store.read_sync_state()
    oldest = await oldest_change_after_async(session, state.position)
    lag = max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest else 0.0
    cache_stats = cache.stats.as_dict() if cache is not None else {}
    return SearchStatus(
        index=IndexStatus(
            version=version,
            documents=searcher.num_docs,
            position=state.position,
            synced_at=state.synced_at,
            lag_seconds=round(lag, 3),
        ),
        cache=CacheStatus(
            backend=cache.backend if cache is not None else "off",
            hits=cache_stats.get("hits", 0),
            misses=cache_stats.get("misses", 0),
            errors=cache_stats.get("errors", 0),
        ),
        analytics=AnalyticsStatus(
            enabled=log is not None,
            written=log.written if log is not None else 0,
            dropped=log.dropped if log is not None else 0,
            pending=log.pending if log is not None else 0,
        ),
    )


def total_pages(total: int, page_size: int) -> int:
    return math.ceil(total / page_size) if total else 0
