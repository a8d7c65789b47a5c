"""What the search index holds for a listing: its schema and the document of one row.

Every engine detail stays in this package; the rest of CarSearch speaks in filters and
summaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import tantivy

# Facets and filters over exact values.
KEYWORD_FIELDS = (
    "make",
    "model",
    "trim",
    "body_style",
    "drivetrain",
    "fuel_type",
    "transmission",
    "exterior_color",
    "interior_color",
    "condition",
    "status",
    "deal_rating",
)
NUMERIC_FIELDS = ("year", "price", "mileage", "dealer_id", "first_seen", "sold")
# Range filters read these instead of price and mileage: a value on every document (MISSING
# where the listing has none) makes a column tantivy scans about three times faster than
# one with gaps (measured: 1,000,000 documents, 23 ms against 7 ms). Ranges start at 0.
RANGE_FIELDS = {"price": "price_range", "mileage": "mileage_range"}
MISSING = -1
# Bumped whenever the schema changes: an index of another version is rebuilt, not read.
SCHEMA_VERSION = 3
# Sort keys pack a tie-breaker (the listing id) under the value, so equal prices always
# come back in the same order and pages never overlap.
SORT_FIELDS = ("sort_price", "sort_mileage", "sort_year", "sort_newest", "sort_deal")
# best_deal orders by percent below the estimate, in hundredths of a percent shifted to
# stay non-negative; listings without a rating come after every rated one.
_DEAL_OFFSET = 10_000  # -100.00%
_DEAL_MAX = 1_000_000  # +9,900%
_DEAL_UNRATED = _DEAL_MAX + 1
_ID_BITS = 2**24


def build_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True, fast=True)
    builder.add_text_field("vin", stored=True, tokenizer_name="raw")
    builder.add_text_field("text", stored=False, tokenizer_name="default")
    for name in KEYWORD_FIELDS:
        builder.add_text_field(name, stored=True, tokenizer_name="raw", fast=True)
    # "Toyota\tCamry": the filters endpoint counts models within makes in one pass.
    builder.add_text_field("make_model", stored=False, tokenizer_name="raw", fast=True)
    for name in NUMERIC_FIELDS:
        builder.add_integer_field(name, stored=True, indexed=True, fast=True)
    for name in (*SORT_FIELDS, *RANGE_FIELDS.values()):
        builder.add_integer_field(name, stored=False, indexed=False, fast=True)
    builder.add_text_field("image", stored=True, tokenizer_name="raw")
    builder.add_text_field("dealer_name", stored=True, tokenizer_name="raw")
    builder.add_text_field("dealer_city", stored=True, tokenizer_name="raw")
    builder.add_text_field("dealer_state", stored=True, tokenizer_name="raw")
    builder.add_float_field("dealer_latitude", stored=True)
    builder.add_float_field("dealer_longitude", stored=True)
    builder.add_integer_field("last_price_change", stored=True)
    builder.add_integer_field("last_price_change_at", stored=True)
    builder.add_integer_field("deal_estimate", stored=True)
    builder.add_float_field("deal_percent", stored=True)
    return builder.build()


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One listing as the index needs it (read by the sync and the rebuild)."""

    id: int
    vin: str
    status: str
    condition: str
    year: int
    make: str
    model: str
    trim: str | None
    body_style: str | None
    drivetrain: str | None
    fuel_type: str | None
    transmission: str | None
    exterior_color: str | None
    interior_color: str | None
    mileage: int | None
    price: int | None
    dealer_id: int | None
    images: list[str] | None
    features: list[str] | None
    description: str | None
    first_seen_at: datetime
    sold_at: datetime | None
    updated_at: datetime
    dealer_name: str | None
    dealer_city: str | None
    dealer_state: str | None
    dealer_latitude: float | None
    dealer_longitude: float | None
    last_price_change: int | None
    last_price_change_at: datetime | None
    deal_rating: str | None
    deal_estimate: int | None
    deal_percent: float | None


def _sort_key(value: int, listing_id: int) -> int:
    return value * _ID_BITS + listing_id % _ID_BITS


def searchable_text(row: ListingRow) -> str:
    parts: list[Any] = [
        row.year,
        row.make,
        row.model,
        row.trim,
        row.body_style,
        row.drivetrain,
        row.fuel_type,
        row.transmission,
        row.exterior_color,
        row.interior_color,
        row.condition,
        " ".join(row.features or ()),
        row.description,
    ]
    return " ".join(str(part) for part in parts if part)


def listing_document(row: ListingRow) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_integer("id", row.id)
    doc.add_text("vin", row.vin)
    doc.add_text("text", searchable_text(row))
    for name in KEYWORD_FIELDS:
        value = getattr(row, name)
        if value:
            doc.add_text(name, value)
    doc.add_text("make_model", f"{row.make}\t{row.model}")
    first_seen = int(row.first_seen_at.timestamp())
    for name, value in (
        ("year", row.year),
        ("price", row.price),
        ("mileage", row.mileage),
        ("dealer_id", row.dealer_id),
        ("first_seen", first_seen),
        ("sold", int(row.sold_at.timestamp()) if row.sold_at else None),
    ):
        if value is not None:
            doc.add_integer(name, value)
    doc.add_integer("price_range", MISSING if row.price is None else row.price)
    doc.add_integer("mileage_range", MISSING if row.mileage is None else row.mileage)
    if row.price is not None:
        doc.add_integer("sort_price", _sort_key(row.price, row.id))
    if row.mileage is not None:
        doc.add_integer("sort_mileage", _sort_key(row.mileage, row.id))
    doc.add_integer("sort_year", _sort_key(row.year * 10_000_000 + first_seen // 1000, row.id))
    doc.add_integer("sort_newest", _sort_key(first_seen, row.id))
    if row.images:
        doc.add_text("image", row.images[0])
    for name in ("dealer_name", "dealer_city", "dealer_state"):
        value = getattr(row, name)
        if value:
            doc.add_text(name, value)
    if row.dealer_latitude is not None and row.dealer_longitude is not None:
        doc.add_float("dealer_latitude", row.dealer_latitude)
        doc.add_float("dealer_longitude", row.dealer_longitude)
    if row.last_price_change is not None and row.last_price_change_at is not None:
        doc.add_integer("last_price_change", row.last_price_change)
        doc.add_integer("last_price_change_at", int(row.last_price_change_at.timestamp()))
    if row.deal_estimate is not None:
        doc.add_integer("deal_estimate", row.deal_estimate)
    if row.deal_percent is not None and row.deal_rating not in (None, "none"):
        doc.add_float("deal_percent", row.deal_percent)
        deal_key = min(_DEAL_MAX, max(0, round(row.deal_percent * 100) + _DEAL_OFFSET))
    else:
        deal_key = _DEAL_UNRATED
    doc.add_integer("sort_deal", _sort_key(deal_key, row.id))
    return doc
