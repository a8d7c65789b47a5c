"""The API envelope shared by every endpoint (see DESIGN.md, API conventions)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Pagination(BaseModel):
    page: int = Field(description="1-based page number", examples=[1])
    page_size: int = Field(description="results per page", examples=[24])
    total: int = Field(description="results matching the query, all pages", examples=[1234])
    total_pages: int = Field(description="pages available at this page size", examples=[52])


class Meta(BaseModel):
    pagination: Pagination | None = None
    model_config = {"extra": "allow"}


class Envelope(BaseModel, Generic[T]):
    data: T
    meta: Meta = Field(default_factory=Meta)


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["no listing with VIN 1HGCM82633A004352"])
    details: list[Any] = Field(default_factory=list)


class ErrorEnvelope(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error envelopes an endpoint can answer with."""
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
