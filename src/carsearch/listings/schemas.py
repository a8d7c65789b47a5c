"""API shapes of a single listing: its detail page and its price history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carsearch.dealers.schemas import DealerProfile
from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    DealRating,
    Drivetrain,
    FuelType,
    ListingStatus,
    NoRatingReason,
    Transmission,
)

_EXAMPLE_VIN = "1HGCM82633A004352"


class PricePoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    price: int = Field(description="asking price in US dollars", examples=[24_990])
    mileage: int | None = Field(description="odometer reading then, in miles", examples=[31_250])
    observed_at: datetime = Field(
        description="when this price was first seen", examples=["2026-10-02T14:05:00Z"]
    )


class PriceSummary(BaseModel):
    """The price history in a few numbers. Price fields are null when no price was ever seen."""

    first_price: int | None = Field(description="the first asking price seen", examples=[26_490])
    current_price: int | None = Field(description="the latest asking price seen", examples=[24_990])
    lowest_price: int | None = Field(description="the lowest asking price seen", examples=[24_990])
    highest_price: int | None = Field(
        description="the highest asking price seen", examples=[26_490]
    )
    total_change: int | None = Field(
        description="current price minus first price, in dollars", examples=[-1_500]
    )
    total_change_percent: float | None = Field(
        description="total change as a percentage of the first price, 2 decimals",
        examples=[-5.66],
    )
    number_of_changes: int = Field(
        description="how many times the price changed (history points minus one)", examples=[2]
    )
    days_on_market: int = Field(
        description="whole days from first seen to sold (or to now while for sale)",
        examples=[41],
    )
    last_change_at: datetime | None = Field(
        description="when the price last changed; null if it never did",
        examples=["2026-10-20T09:30:00Z"],
    )


class PriceHistory(BaseModel):
    vin: str = Field(description="the listing's VIN", examples=[_EXAMPLE_VIN])
    points: list[PricePoint] = Field(description="every price seen, oldest first")
    summary: PriceSummary = Field(description="the history in a few numbers")


class ListingSourceEntry(BaseModel):
    """One site where this car is (or was) listed."""

    model_config = ConfigDict(from_attributes=True)

    source: str = Field(description="the site the listing was collected from", examples=["cars"])
    source_listing_id: str = Field(
        description="the listing's id on that site", examples=["a1b2c3d4-5678"]
    )
    url: str | None = Field(
        description="the listing's page on that site",
        examples=["https://www.cars.com/vehicledetail/a1b2c3d4-5678/"],
    )
    first_seen_at: datetime = Field(
        description="when it was first seen there", examples=["2026-09-28T11:00:00Z"]
    )
    last_seen_at: datetime = Field(
        description="when it was last seen there", examples=["2026-11-25T23:10:00Z"]
    )


class ComparableListing(BaseModel):
    """A listing like this one that the market value was read from."""

    vin: str = Field(description="the comparable's VIN", examples=["1HGCV1F39LA012345"])
    year: int = Field(description="model year", examples=[2020])
    trim: str | None = Field(description="trim level", examples=["EX-L"])
    mileage: int | None = Field(description="odometer reading in miles", examples=[28_400])
    price: int = Field(description="asking (or final) price in US dollars", examples=[25_900])
    condition: Condition = Field(description="new, used or certified pre-owned", examples=["used"])
    status: ListingStatus = Field(description="for sale, or recently sold", examples=["active"])
    distance_miles: float | None = Field(
        description="miles between the two dealers; null when either location is unknown",
        examples=[12.4],
    )


class DealExplanation(BaseModel):
    """How the asking price compares with the market, and the evidence."""

    rating: DealRating = Field(
        description="great (10%+ below the estimate), good (5-10% below), fair (within 5%), "
        "high (5-10% above), overpriced (10%+ above), or none",
        examples=["good"],
    )
    reason: NoRatingReason | None = Field(
        description="why there is no rating: no_price, no_mileage, too_few_comparables, "
        "new_car (too few new ones to compare with) or rare_model; null when rated",
        examples=[None],
    )
    estimate: int | None = Field(
        description="estimated market value in US dollars, from comparable listings",
        examples=[26_430],
    )
    difference: int | None = Field(
        description="asking price minus the estimate, in dollars (negative: below market)",
        examples=[-1_440],
    )
    percent: float | None = Field(
        description="the difference as a percentage of the estimate, 1 decimal",
        examples=[-5.4],
    )
    comparables: int = Field(
        description="how many listings of the same model the estimate was read from",
        examples=[184],
    )
    appraised_at: datetime = Field(
        description="when the listing was last appraised", examples=["2026-11-26T04:30:00Z"]
    )
    examples: list[ComparableListing] = Field(
        description="a few of the closest comparables: same trim first, then nearest model "
        "year and mileage"
    )


class ListingDetail(BaseModel):
    """Everything a shopper sees on a listing's page."""

    vin: str = Field(description="vehicle identification number", examples=[_EXAMPLE_VIN])
    status: ListingStatus = Field(description="for sale, sold or removed", examples=["active"])
    condition: Condition = Field(description="new, used or certified pre-owned", examples=["used"])
    year: int = Field(description="model year", examples=[2021])
    make: str = Field(description="manufacturer", examples=["Honda"])
    model: str = Field(description="model name", examples=["Accord"])
    trim: str | None = Field(description="trim level", examples=["EX-L"])
    body_style: BodyStyle | None = Field(description="body style", examples=["sedan"])
    drivetrain: Drivetrain | None = Field(description="driven wheels", examples=["fwd"])
    fuel_type: FuelType | None = Field(description="fuel or energy", examples=["gasoline"])
    transmission: Transmission | None = Field(description="transmission", examples=["automatic"])
    engine: str | None = Field(description="engine as listed", examples=["1.5L I4 Turbo"])
    exterior_color: Color | None = Field(description="exterior color family", examples=["blue"])
    interior_color: Color | None = Field(description="interior color family", examples=["black"])
    mileage: int | None = Field(description="odometer reading in miles", examples=[31_250])
    price: int | None = Field(
        description="asking price in US dollars; null when the dealer shows none",
        examples=[24_990],
    )
    msrp: int | None = Field(
        description="manufacturer's suggested retail price when new", examples=[32_120]
    )
    images: list[str] = Field(
        description="photo URLs, the main one first",
        examples=[["https://images.example/1HGCM82633A004352/1.jpg"]],
    )
    features: list[str] = Field(
        description="equipment and options", examples=[["Apple CarPlay", "Heated seats"]]
    )
    description: str | None = Field(
        description="the seller's description",
        examples=["One owner, clean history report, new tires."],
    )
    first_seen_at: datetime = Field(
        description="when the listing was first seen", examples=["2026-09-28T11:00:00Z"]
    )
    last_seen_at: datetime = Field(
        description="when the listing was last seen", examples=["2026-11-25T23:10:00Z"]
    )
    sold_at: datetime | None = Field(
        description="when it was found sold; null while for sale", examples=[None]
    )
    days_on_market: int = Field(
        description="whole days from first seen to sold (or to now while for sale)",
        examples=[41],
    )
    dealer: DealerProfile | None = Field(description="the selling dealer, if known")
    sources: list[ListingSourceEntry] = Field(description="every site this car was seen on")
    specs: dict[str, Any] | None = Field(
        description="what decoding the VIN found (NHTSA vPIC or offline); null if not decoded",
        examples=[{"source": "vpic", "model_year": 2021, "make": "HONDA", "model": "Accord"}],
    )
    price_summary: PriceSummary = Field(description="the price history in a few numbers")
    deal: DealExplanation | None = Field(
        description="market value and deal rating; null until the listing is appraised"
    )
