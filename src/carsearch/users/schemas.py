"""A signed-in user's API shapes: profile, favorites, saved searches, notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from carsearch.listings.vocab import AlertFrequency, BodyStyle
from carsearch.schemas import NO_NUL, Count, Flag
from carsearch.search.schemas import ListingSummary, Name, SearchFilters


class Preferences(BaseModel):
    """What fills in a search the user leaves open (the assistant uses it too)."""

    model_config = ConfigDict(extra="forbid")

    home_zip: str | None = Field(
        None, pattern=r"^\d{5}$", description="Home ZIP code.", examples=["10001"]
    )
    radius: Count | None = Field(
        None, ge=1, le=500, description="Preferred search radius, miles.", examples=[50]
    )
    favorite_makes: list[Name] = Field(
        [], max_length=20, description="Makes to favour.", examples=[["Toyota", "Honda"]]
    )
    body_styles: list[BodyStyle] = Field(
        [], max_length=9, description="Body styles to favour.", examples=[["suv"]]
    )
    price_max: Count | None = Field(
        None, ge=0, le=10_000_000, description="Budget, USD.", examples=[30000]
    )

    @field_validator("favorite_makes")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        cleaned = [name.strip() for name in value]
        if any(not name or len(name) > 64 for name in cleaned):
            raise ValueError("each make is 1 to 64 characters")
        return list(dict.fromkeys(cleaned))


class ProfileUpdate(BaseModel):
    # Stripped before the length rules: a name of spaces is no name.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="Display name.",
        examples=["Ann Lee"],
    )
    preferences: Preferences | None = Field(None, description="Replaces the preferences.")


class FavoriteEntry(BaseModel):
    listing: ListingSummary = Field(description="The car now: sold cars stay, marked sold.")
    saved_at: datetime = Field(description="When it was saved.")
    saved_price: int | None = Field(description="Its price when saved.", examples=[24990])
    price_change_since_saved: int | None = Field(
        description="Current price minus saved price (negative: cheaper).", examples=[-1000]
    )


class SavedSearchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="A name for it.",
        examples=["AWD under 25k"],
    )
    filters: SearchFilters = Field(
        description="The same names as GET /listings (lists for repeatable ones)."
    )
    alert_frequency: AlertFrequency = Field(
        AlertFrequency.daily, description="instant, daily, weekly or off.", examples=["daily"]
    )


class SavedSearchOut(BaseModel):
    id: int = Field(description="The saved search's id.", examples=[7])
    name: str = Field(description="Its name.", examples=["AWD under 25k"])
    filters: dict[str, Any] = Field(
        description="The filters, as given (defaults left out).",
        examples=[{"drivetrain": ["awd"], "price_max": 25000}],
    )
    alert_frequency: AlertFrequency = Field(description="How often alerts go out.")
    created_at: datetime = Field(description="When it was saved.")
    last_alerted_at: datetime | None = Field(description="When alerts last ran for it.")


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The notification's id.", examples=[3])
    kind: str = Field(description="new_match, price_drop or sold.", examples=["price_drop"])
    title: str = Field(description="What happened.", examples=["2021 Toyota RAV4: $1,000 less"])
    payload: dict[str, Any] = Field(
        description="Details: vin, prices, saved search.", examples=[{"vin": "JTM..."}]
    )
    created_at: datetime = Field(description="When it was noticed.")
    read_at: datetime | None = Field(description="When the user read it.")


class MarkRead(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[Count, Field(ge=1, le=2**62)]] = Field(
        [], max_length=500, description="Notifications to mark read.", examples=[[3, 4]]
    )
    all: Flag = Field(False, description="Mark every notification read.")


class MarkedRead(BaseModel):
    marked: int = Field(description="Notifications newly marked read.", examples=[2])
