"""The API envelope shared by every endpoint (see DESIGN.md, API conventions)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field

T = TypeVar("T")


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true or false")
    return value


def _a_boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


# JSON bodies are validated leniently by default (false would pass as 0, 1 as true); these
# keep numbers numbers and booleans booleans. Query strings still convert ("25000").
Count = Annotated[int, BeforeValidator(_not_a_boolean)]
Flag = Annotated[bool, BeforeValidator(_a_boolean)]

# Text a person can type: PostgreSQL cannot store the NUL character, so it is refused at
# the door (422) instead of failing at the database.
NO_NUL = r"^[^\x00]*$"


class Pagination(BaseModel):
    page: int = Field(description="1-based page number", examples=[1])
    page_size: int = Field(description="results per page", examples=[24])
    total: int = Field(description="results matching the query, all pages", examples=[1234])
    total_pages: int = Field(description="pages available at this page size", examples=[52])


class Meta(BaseModel):
    # Only lists carry pagination; elsewhere it is left out rather than null.
    pagination: Pagination | None = Field(
        None, description="Present on lists only.", exclude_if=lambda value: value is None
    )
    model_config = {"extra": "allow"}


class Envelope(BaseModel, Generic[T]):
    data: T = Field(description="The result.")
    meta: Meta = Field(default_factory=Meta, description="About the result.")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable kind of error.", examples=["not_found"])
    message: str = Field(
        description="What went wrong, for people.",
        examples=["no listing with VIN 1HGCM82633A004352"],
    )
    details: list[Any] = Field(
        default_factory=list,
        description="Specifics, such as the parameter at fault and why.",
        examples=[[{"loc": ["query", "zip"], "message": "no US ZIP code 00000"}]],
    )


class ErrorEnvelope(BaseModel):
    error: ErrorBody = Field(description="The error.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error envelopes an endpoint can answer with; every API
    endpoint is rate limited, so 429 is always among them."""
    statuses = (*statuses, 429)
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        422: "Invalid parameters",
        429: "Too many requests",
        503: "Unavailable",
    }
    return {
        status: {"model": ErrorEnvelope, "description": descriptions.get(status, "Error")}
        for status in statuses
    }
