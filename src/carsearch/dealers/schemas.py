"""API shapes of dealers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DealerProfile(BaseModel):
    """Who a dealer is, where it stands and how to reach it."""

    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="dealer id", examples=[412])
    name: str = Field(description="the dealership's name", examples=["Sunset Honda"])
    address: str | None = Field(description="street address", examples=["1200 Sunset Blvd"])
    city: str | None = Field(description="city", examples=["Los Angeles"])
    state: str | None = Field(description="two-letter state code", examples=["CA"])
    zip: str | None = Field(description="5-digit ZIP code", examples=["90026"])
    phone: str | None = Field(description="phone number", examples=["(213) 555-0142"])
    website: str | None = Field(
        description="the dealer's web site", examples=["https://www.sunsethonda.example"]
    )
    rating: float | None = Field(description="average review rating, 0 to 5", examples=[4.6])
    review_count: int | None = Field(description="number of reviews", examples=[1287])
    latitude: float | None = Field(description="latitude in degrees", examples=[34.0776])
    longitude: float | None = Field(description="longitude in degrees", examples=[-118.2606])


class DealerDetail(DealerProfile):
    active_listing_count: int = Field(
        description="listings of this dealer currently for sale", examples=[86]
    )


class NearbyDealer(DealerDetail):
    distance_miles: float = Field(
        description="great-circle distance from the ZIP code's centroid, in miles",
        examples=[3.72],
    )
