"""Chat API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from carsearch.listings.vocab import DealRating
from carsearch.schemas import NO_NUL

MAX_MESSAGE = 2_000


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    message: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE,
        pattern=NO_NUL,
        description="What the shopper asks, in plain words.",
        examples=["AWD SUV under 25k near 10001 with low miles"],
    )
    conversation_id: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{32}$",
        description="Continue this conversation; omitted, a new one starts.",
        examples=["3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d"],
    )


class ShownListing(BaseModel):
    """A listing the assistant was shown, as a citation would describe it."""

    vin: str = Field(description="The listing's VIN.", examples=["4T1G11AK5MU123456"])
    title: str = Field(description="Year, make, model, trim.", examples=["2021 Toyota RAV4 XLE"])
    price: int | None = Field(description="Asking price, USD.", examples=[23990])
    mileage: int | None = Field(description="Odometer miles.", examples=[31250])
    url: str = Field(
        description="The listing in this API.", examples=["/api/v1/listings/4T1G11AK5MU123456"]
    )
    dealer: str | None = Field(
        description="Dealer name and city.", examples=["Austin Toyota, Austin"]
    )
    distance_miles: float | None = Field(description="Miles from the searched ZIP.", examples=[8.4])
    deal: DealRating | None = Field(
        None,
        description="Deal rating against the market (great, good, fair, high, overpriced, "
        "none); null when not appraised.",
        examples=["good"],
    )
    relevance: float = Field(
        description="1 for the best match, lower for the others.", examples=[1.0]
    )


class Citation(ShownListing):
    index: int = Field(description="The [n] marker in the answer.", examples=[1])


class ChatAnswer(BaseModel):
    conversation_id: str = Field(description="Send it back to continue the conversation.")
    answer: str = Field(description="The assistant's answer, with [n] markers.")
    citations: list[Citation] = Field(description="The listings behind the markers, in order.")
    filters: dict[str, Any] = Field(
        description="The search the answer used (GET /listings names), for a UI to show and edit.",
        examples=[{"body_style": ["suv"], "drivetrain": ["awd"], "price_max": 25000}],
    )


class ChatMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    role: str = Field(description="user or assistant.", examples=["user"])
    content: str = Field(description="What was said.")
    citations: list[dict[str, Any]] = Field(description="The assistant's citations.")
    filters: dict[str, Any] | None = Field(description="The search an answer used.")
    created_at: datetime = Field(description="When it was said.")


class ChatHistory(BaseModel):
    conversation_id: str = Field(description="The conversation.")
    messages: list[ChatMessageOut] = Field(description="Oldest first.")
    filters: dict[str, Any] = Field(description="The conversation's current search.")
