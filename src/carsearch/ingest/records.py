"""Typed records a source parser returns, before any normalization.

Values are kept as the source page shows them (trimmed strings), so the normalizing step
can be changed and re-run without scraping again. Only `condition` is already mapped to
our vocabulary, because the pages spread it over several fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ListingCondition = Literal["new", "used", "cpo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapedDealer:
    source_dealer_id: str | None = None
    name: str | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    phone: str | None = None
    rating: float | None = None
    review_count: int | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapedListing:
    source: str
    source_listing_id: str
    url: str
    vin: str | None = None
    price: int | None = None
    mileage: int | None = None
    year: int | None = None
    make: str | None = None
    model: str | None = None
    trim: str | None = None
    condition: ListingCondition | None = None
    exterior_color: str | None = None
    interior_color: str | None = None
    drivetrain: str | None = None
    fuel_type: str | None = None
    transmission: str | None = None
    engine: str | None = None
    mpg_city: int | None = None
    mpg_highway: int | None = None
    body_style: str | None = None
    images: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    description: str | None = None
    price_drop: bool = False
    msrp: int | None = None
    dealer: ScrapedDealer | None = None
    private_seller: bool = False


@dataclass(frozen=True, slots=True)
class SearchResultsPage:
    listings: tuple[ScrapedListing, ...]
    total_results: int | None
    page: int | None
    total_pages: int | None
