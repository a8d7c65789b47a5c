"""Filters to tantivy queries, and tantivy results back to plain values. Pure functions."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import tantivy

from carsearch.listings.vocab import ListingStatus
from carsearch.search.documents import KEYWORD_FIELDS as KEYWORD_FILTERS
from carsearch.search.documents import RANGE_FIELDS
from carsearch.search.schemas import DealSummary, ListingSummary, PriceChange, SearchFilters

# earthdistance's earth() radius, so distances agree with the SQL that finds dealers.
EARTH_RADIUS_MILES = 6_378_168 / 1_609.344
MAX_QUERY_TERMS = 12
_TOKEN = re.compile(r"[a-z0-9]+")


def _values(values: Iterable[Any]) -> list[str]:
    return [str(getattr(value, "value", value)) for value in values]


def _range(
    schema: tantivy.Schema, field: str, low: int | None, high: int | None
) -> tantivy.Query | None:
    if low is None and high is None:
        return None
    return tantivy.Query.range_query(schema, field, tantivy.FieldType.Integer, low, high)


def text_query(schema: tantivy.Schema, text: str) -> tantivy.Query | None:
    """Every word must match, allowing typos: one edit for words of 4+ letters, two for 8+."""
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
    for token in _TOKEN.findall(text.lower())[:MAX_QUERY_TERMS]:
        exact = tantivy.Query.term_query(schema, "text", token)
        if token.isdigit() or len(token) < 4:
            clauses.append((tantivy.Occur.Must, exact))
            continue
        distance = 2 if len(token) >= 8 else 1
        fuzzy = tantivy.Query.fuzzy_term_query(schema, "text", token, distance=distance)
        # The exact spelling scores above its neighbours.
        either = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.boost_query(exact, 2.0)),
                (tantivy.Occur.Should, fuzzy),
            ]
        )
        clauses.append((tantivy.Occur.Must, either))
    if not clauses:
        return None
    return tantivy.Query.boolean_query(clauses)


def build_query(
    schema: tantivy.Schema,
    filters: SearchFilters,
    *,
    dealer_ids: Sequence[int] | None = None,
    without: str | None = None,
) -> tantivy.Query:
    """The query for `filters`; `without` leaves one keyword filter out (disjunctive facets).

    `dealer_ids` restricts to those dealers (ZIP radius); an empty list matches nothing.
    """
    clauses: list[tantivy.Query] = []
    if filters.q:
        words = text_query(schema, filters.q)
        if words is not None:
            clauses.append(words)
    for field in KEYWORD_FILTERS:
        values = getattr(filters, field)
        if values and field != without and field != "status":
            clauses.append(tantivy.Query.term_set_query(schema, field, _values(values)))
    bounded = _range(schema, "year", filters.year_min, filters.year_max)
    if bounded is not None:
        clauses.append(bounded)
    for field, low, high in (
        ("price", filters.price_min, filters.price_max),
        ("mileage", None, filters.mileage_max),
    ):
        if low is not None or high is not None:
            # From 0, so that listings without a value (MISSING) never match a range.
            clauses.append(
                tantivy.Query.range_query(
                    schema, RANGE_FIELDS[field], tantivy.FieldType.Integer, max(0, low or 0), high
                )
            )
    if filters.dealer_id is not None:
        clauses.append(tantivy.Query.term_query(schema, "dealer_id", filters.dealer_id))
    if dealer_ids is not None:
        if not dealer_ids:
            return tantivy.Query.empty_query()
        clauses.append(tantivy.Query.term_set_query(schema, "dealer_id", list(dealer_ids)))
    occurs = [(tantivy.Occur.Must, clause) for clause in clauses]
    occurs.extend(_status_clauses(schema, filters.status))
    if not any(occur == tantivy.Occur.Must for occur, _ in occurs):
        occurs.append((tantivy.Occur.Must, tantivy.Query.all_query()))
    if len(occurs) == 1:
        return occurs[0][1]
    return tantivy.Query.boolean_query(occurs)


def _status_clauses(
    schema: tantivy.Schema, wanted: Sequence[ListingStatus]
) -> list[tuple[tantivy.Occur, tantivy.Query]]:
    """The status filter. Nearly every listing is active, so a search of active listings
    asks for "none of the others": skipping the few sold and removed ones costs less than
    visiting every active one (1,000,000 documents: a whole pass saved)."""
    others = [status.value for status in ListingStatus if status not in wanted]
    if not others:
        return []
    if ListingStatus.active in wanted:
        return [(tantivy.Occur.MustNot, tantivy.Query.term_set_query(schema, "status", others))]
    values = [status.value for status in wanted]
    return [(tantivy.Occur.Must, tantivy.Query.term_set_query(schema, "status", values))]


def great_circle_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(a)))


def _first(document: dict[str, list[Any]], field: str) -> Any:
    values = document.get(field)
    return values[0] if values else None


def summary_from_document(
    document: dict[str, list[Any]],
    *,
    now: datetime,
    origin: tuple[float, float] | None = None,
) -> ListingSummary:
    first_seen = _first(document, "first_seen")
    sold = _first(document, "sold")
    end = sold if sold is not None else now.timestamp()
    change_amount = _first(document, "last_price_change")
    change_at = _first(document, "last_price_change_at")
    distance = None
    latitude = _first(document, "dealer_latitude")
    longitude = _first(document, "dealer_longitude")
    if origin is not None and latitude is not None and longitude is not None:
        distance = round(great_circle_miles(origin[0], origin[1], latitude, longitude), 1)
    return ListingSummary(
        vin=_first(document, "vin"),
        year=_first(document, "year"),
        make=_first(document, "make"),
        model=_first(document, "model"),
        trim=_first(document, "trim"),
        price=_first(document, "price"),
        mileage=_first(document, "mileage"),
        condition=_first(document, "condition"),
        status=_first(document, "status"),
        image=_first(document, "image"),
        dealer_name=_first(document, "dealer_name"),
        dealer_city=_first(document, "dealer_city"),
        dealer_state=_first(document, "dealer_state"),
        days_on_market=max(0, int((end - first_seen) // 86_400)) if first_seen else 0,
        last_price_change=(
            PriceChange(amount=change_amount, changed_at=datetime.fromtimestamp(change_at, UTC))
            if change_amount is not None and change_at is not None
            else None
        ),
        distance_miles=distance,
        deal=_deal(document),
    )


def _deal(document: dict[str, list[Any]]) -> DealSummary | None:
    rating = _first(document, "deal_rating")
    if rating is None:
        return None
    return DealSummary(
        rating=rating,
        estimate=_first(document, "deal_estimate"),
        percent=_first(document, "deal_percent"),
    )
