"""Search parameters and results. `SearchFilters` is also what a saved search stores."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    DealRating,
    Drivetrain,
    FuelType,
    ListingStatus,
    Transmission,
)
from carsearch.schemas import NO_NUL, Count, Meta

MAX_RADIUS_MILES = 500
DEFAULT_RADIUS_MILES = 50
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 24
FACET_FIELDS = (
    "make",
    "model",
    "body_style",
    "drivetrain",
    "fuel_type",
    "transmission",
    "exterior_color",
    "interior_color",
    "condition",
    "deal_rating",
)
_FACET_NAME = "(?:" + "|".join(FACET_FIELDS) + ")"
FACETS_PATTERN = rf"^\s*(?:{_FACET_NAME}\s*(?:,\s*{_FACET_NAME}\s*)*)?$"
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]


class SortOrder(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    mileage_asc = "mileage_asc"
    year_desc = "year_desc"
    newest = "newest"
    distance = "distance"
    best_deal = "best_deal"  # furthest below the estimated market value first


class SearchFilters(BaseModel):
    """Which listings: every field optional, repeatable ones OR within, AND across."""

    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(
        None,
        max_length=200,
        pattern=NO_NUL,
        description="Free text; misspelled makes and models are tolerated.",
        examples=["toyota camry hybrid"],
    )
    make: list[Name] = Field([], description="Make (repeatable).", examples=[["Toyota", "Honda"]])
    model: list[Name] = Field([], description="Model (repeatable).", examples=[["Camry"]])
    trim: list[Name] = Field([], description="Trim (repeatable).", examples=[["XLE"]])
    body_style: list[BodyStyle] = Field(
        [], description="Body style (repeatable).", examples=[["suv"]]
    )
    drivetrain: list[Drivetrain] = Field(
        [], description="Drivetrain (repeatable).", examples=[["awd"]]
    )
    fuel_type: list[FuelType] = Field([], description="Fuel (repeatable).", examples=[["hybrid"]])
    transmission: list[Transmission] = Field(
        [], description="Transmission (repeatable).", examples=[["automatic"]]
    )
    exterior_color: list[Color] = Field(
        [], description="Exterior color family (repeatable).", examples=[["blue"]]
    )
    interior_color: list[Color] = Field(
        [], description="Interior color family (repeatable).", examples=[["black"]]
    )
    condition: list[Condition] = Field(
        [], description="new, used or cpo (repeatable).", examples=[["used", "cpo"]]
    )
    deal_rating: list[DealRating] = Field(
        [],
        description="Deal rating against the estimated market value (repeatable): great, "
        "good, fair, high, overpriced, or none (appraised but unratable; a listing not "
        "appraised yet matches no rating).",
        examples=[["great", "good"]],
    )
    year_min: Count | None = Field(
        None, ge=1981, le=2100, description="Oldest model year.", examples=[2018]
    )
    year_max: Count | None = Field(
        None, ge=1981, le=2100, description="Newest model year.", examples=[2024]
    )
    price_min: Count | None = Field(
        None, ge=0, le=10_000_000, description="Lowest price, USD.", examples=[10000]
    )
    price_max: Count | None = Field(
        None, ge=0, le=10_000_000, description="Highest price, USD.", examples=[25000]
    )
    mileage_max: Count | None = Field(
        None, ge=0, le=2_000_000, description="Most miles.", examples=[60000]
    )
    dealer_id: Count | None = Field(
        None, ge=1, le=2**62, description="Only this dealer's listings.", examples=[12]
    )
    zip: str | None = Field(
        None,
        pattern=r"^\d{5}$",
        description="US ZIP code: search around its centroid.",
        examples=["10001"],
    )
    radius: Count = Field(
        DEFAULT_RADIUS_MILES,
        ge=1,
        le=MAX_RADIUS_MILES,
        description="Miles from the ZIP (needs zip).",
        examples=[50],
    )
    status: list[ListingStatus] = Field(
        [ListingStatus.active],
        description="Listing status (repeatable; default active).",
        examples=[["active"]],
    )

    @field_validator("q")
    @classmethod
    def _strip_query(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        return value or None

    @field_validator("status")
    @classmethod
    def _default_status(cls, value: list[ListingStatus]) -> list[ListingStatus]:
        return value or [ListingStatus.active]

    def normalized(self) -> dict[str, Any]:
        """What was asked, canonically: only fields that differ from their defaults, lists
        sorted without repeats, words lower-cased. Equal searches give equal dicts."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = sorted(set(value))
        if self.q is not None:
            data["q"] = " ".join(self.q.lower().split())
        return data

    @model_validator(mode="after")
    def _ordered_ranges(self) -> SearchFilters:
        for low, high in (("year_min", "year_max"), ("price_min", "price_max")):
            low_value, high_value = getattr(self, low), getattr(self, high)
            if low_value is not None and high_value is not None and low_value > high_value:
                raise ValueError(f"{low} ({low_value}) is greater than {high} ({high_value})")
        return self


class SearchParams(SearchFilters):
    sort: SortOrder = Field(
        SortOrder.relevance,
        description="Order of results; distance needs a zip.",
        examples=["price_asc"],
    )
    page: int = Field(1, ge=1, le=1_000_000, description="1-based page.", examples=[1])
    page_size: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Results per page.", examples=[24]
    )
    facets: str | None = Field(
        None,
        max_length=300,
        description="Comma list of facets to count in the same response: "
        + ", ".join(FACET_FIELDS),
        examples=["make,body_style"],
        json_schema_extra={"pattern": FACETS_PATTERN},
    )

    @field_validator("facets")
    @classmethod
    def _known_facets(cls, value: str | None) -> str | None:
        # The same rule as FACETS_PATTERN, with a message that names the problem.
        if value is None or not value.strip():
            return None
        names = [name.strip() for name in value.split(",")]
        if "" in names:
            raise ValueError("empty facet name in the comma list")
        unknown = [name for name in names if name not in FACET_FIELDS]
        if unknown:
            raise ValueError(f"unknown facet {unknown[0]!r}; known: {', '.join(FACET_FIELDS)}")
        return ",".join(dict.fromkeys(names))

    @model_validator(mode="after")
    def _distance_needs_zip(self) -> SearchParams:
        if self.sort is SortOrder.distance and self.zip is None:
            raise ValueError("sort=distance needs a zip")
        return self

    def normalized(self) -> dict[str, Any]:
        data = super().normalized()
        if self.facets:
            data["facets"] = sorted(self.facet_names)
        return data

    @property
    def facet_names(self) -> list[str]:
        return self.facets.split(",") if self.facets else []

    def filters(self) -> SearchFilters:
        return SearchFilters.model_validate(
            self.model_dump(exclude={"sort", "page", "page_size", "facets"})
        )


class PriceChange(BaseModel):
    amount: int = Field(description="Last price change in USD (negative: a drop).", examples=[-500])
    changed_at: datetime = Field(description="When it changed.")


class DealSummary(BaseModel):
    rating: DealRating = Field(
        description="great, good, fair, high, overpriced, or none when it cannot be rated "
        "(the listing's page says why).",
        examples=["good"],
    )
    estimate: int | None = Field(
        description="Estimated market value in USD, from comparable listings.", examples=[25400]
    )
    percent: float | None = Field(
        description="Asking price against the estimate, percent (negative: below market).",
        examples=[-5.5],
    )


class ListingSummary(BaseModel):
    vin: str = Field(description="Vehicle identification number.", examples=["4T1G11AK5MU123456"])
    year: int = Field(description="Model year.", examples=[2021])
    make: str = Field(description="Canonical make name.", examples=["Toyota"])
    model: str = Field(description="Canonical model name.", examples=["Camry"])
    trim: str | None = Field(description="Trim, when known.", examples=["XLE"])
    price: int | None = Field(
        description="USD; null when the dealer asks to call.", examples=[23999]
    )
    mileage: int | None = Field(description="Odometer miles, when listed.", examples=[31250])
    condition: Condition = Field(description="new, used or cpo.", examples=["used"])
    status: ListingStatus = Field(description="active, sold or removed.", examples=["active"])
    image: str | None = Field(description="Main photo URL.", examples=[None])
    dealer_name: str | None = Field(description="Selling dealer.", examples=["Austin Toyota"])
    dealer_city: str | None = Field(description="Dealer's city.", examples=["Austin"])
    dealer_state: str | None = Field(description="Dealer's state.", examples=["TX"])
    days_on_market: int = Field(description="Days since first seen (until sold).", examples=[12])
    last_price_change: PriceChange | None = Field(description="Most recent price change, if any.")
    deal: DealSummary | None = Field(
        None, description="Deal rating against the market; null until the listing is appraised."
    )
    distance_miles: float | None = Field(
        None, description="Great-circle miles from the searched ZIP; only with zip.", examples=[8.4]
    )


class FacetBucket(BaseModel):
    value: str = Field(description="The field's value.", examples=["Toyota"])
    count: int = Field(description="Listings with that value.", examples=[812])


class NumericStats(BaseModel):
    min: float | None = Field(description="Lowest value; null with no results.", examples=[4500])
    max: float | None = Field(description="Highest value.", examples=[189000])
    avg: float | None = Field(description="Mean value.", examples=[31250.5])


class HistogramBucket(BaseModel):
    low: int = Field(description="Bucket's lower bound (inclusive), USD.", examples=[20000])
    high: int = Field(description="Upper bound (exclusive), USD.", examples=[25000])
    count: int = Field(description="Listings priced in the bucket.", examples=[140])


class FacetResult(BaseModel):
    facets: dict[str, list[FacetBucket]] = Field(
        description="Disjunctive counts: each facet ignores its own filter."
    )
    stats: dict[str, NumericStats] = Field(description="price, mileage and year over the results.")
    price_histogram: list[HistogramBucket] = Field(
        description="Listings per $5,000 price band; empty bands left out."
    )
    total: int = Field(description="Listings matching every filter.", examples=[1234])


class ModelCount(BaseModel):
    name: str = Field(description="Model name.", examples=["Camry"])
    count: int = Field(description="Active listings of the model.", examples=[210])


class MakeFilter(BaseModel):
    name: str = Field(description="Make name.", examples=["Toyota"])
    count: int = Field(description="Active listings of the make.", examples=[1840])
    models: list[ModelCount] = Field(description="The make's models, by name.")


class Range(BaseModel):
    min: int | None = Field(description="Lowest value among active listings.", examples=[0])
    max: int | None = Field(description="Highest value.", examples=[250000])


class FilterOptions(BaseModel):
    makes: list[MakeFilter] = Field(description="Makes with their models, active listings counted.")
    values: dict[str, list[FacetBucket]] = Field(
        description="Every value of each enumerated field, with active listing counts."
    )
    ranges: dict[str, Range] = Field(description="price, mileage and year bounds.")
    sorts: list[SortOrder] = Field(description="Accepted sort orders.")


class SearchMeta(Meta):
    facets: FacetResult | None = Field(
        None, description="Facet counts, when asked for with `facets`."
    )


class SearchResponse(BaseModel):
    data: list[ListingSummary] = Field(description="One page of results.")
    meta: SearchMeta = Field(description="Pagination, and facets when asked for.")


class IndexStatus(BaseModel):
    version: str = Field(
        description="Changes whenever the index does; caches key on it.",
        examples=["gen-20261126T022257-435f9e:1795659777368913987"],
    )
    documents: int = Field(description="Listings in the index, every status.", examples=[10000])
    position: datetime | None = Field(
        description="Newest database change the index holds.",
        examples=["2026-11-26T02:22:54Z"],
    )
    synced_at: datetime | None = Field(
        description="When the last sync or rebuild finished.", examples=["2026-11-26T02:22:57Z"]
    )
    lag_seconds: float = Field(
        description="Age of the oldest change not yet searchable; 0 when current.", examples=[0]
    )


class CacheStatus(BaseModel):
    backend: str = Field(description="redis, memory or off.", examples=["memory"])
    hits: int = Field(description="Answers served from the cache by this process.", examples=[80])
    misses: int = Field(description="Answers computed by this process.", examples=[20])
    errors: int = Field(
        description="Cache reads or writes that failed (searches still ran).", examples=[0]
    )


class AnalyticsStatus(BaseModel):
    enabled: bool = Field(description="Whether searches are recorded.", examples=[True])
    written: int = Field(description="Search events written by this process.", examples=[1200])
    dropped: int = Field(
        description="Events dropped: buffer full or database unavailable.", examples=[0]
    )
    pending: int = Field(description="Events waiting to be written.", examples=[3])


class SearchStatus(BaseModel):
    index: IndexStatus = Field(description="How current the index is.")
    cache: CacheStatus = Field(description="The response cache of this process.")
    analytics: AnalyticsStatus = Field(description="Search recording of this process.")
