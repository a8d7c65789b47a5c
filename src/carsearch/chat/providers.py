"""Chat providers: one interface, chosen by setting.

A provider reads the conversation and answers, using the tools to search; it yields text
as it comes (`TextDelta`) and ends with an `Answer` naming the listings it was shown and
the filters it used. It may cite only listings the tools returned: the service renumbers
its [n] markers and drops any with no listing behind it.

`local` needs no network and no model: it reads the message with `understand`, runs the
search, and writes a short answer about the best matches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from carsearch.chat.schemas import ShownListing
from carsearch.chat.understand import understand
from carsearch.errors import CarSearchError
from carsearch.ingest.normalize import Catalog
from carsearch.search.schemas import SearchFilters, SortOrder

SHOWN = 5


class ProviderFailed(CarSearchError):
    """The model's service failed or timed out: 502, and the conversation is unchanged."""

    status_code = 502
    code = "assistant_unavailable"


class ProviderBusy(CarSearchError):
    """The model's service is rate limiting us: 503, try again shortly."""

    status_code = 503
    code = "assistant_busy"


@dataclass(frozen=True, slots=True)
class ChatContext:
    message: str
    history: Sequence[tuple[str, str]]  # (role, content), oldest first, trimmed
    previous: SearchFilters | None
    preferences: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    listings: list[ShownListing]
    total: int


class ChatTools(Protocol):
    async def search_listings(
        self, filters: SearchFilters, sort: SortOrder, limit: int
    ) -> SearchOutcome: ...

    async def get_listing(self, vin: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    shown: list[ShownListing]
    filters: SearchFilters


ChatEvent = TextDelta | Answer


class ChatProvider(Protocol):
    name: str

    def reply(self, context: ChatContext, tools: ChatTools) -> AsyncIterator[ChatEvent]: ...


def _money(amount: int | None) -> str:
    return f"${amount:,}" if amount is not None else "call for price"


def describe(listing: ShownListing) -> str:
    parts = [listing.title, _money(listing.price)]
    if listing.mileage is not None:
        parts.append(f"{listing.mileage:,} mi")
    if listing.deal in ("great", "good"):
        parts.append(f"a {listing.deal} deal")
    where = f"at {listing.dealer}" if listing.dealer else ""
    if listing.distance_miles is not None:
        where += f" ({listing.distance_miles:g} mi away)"
    if where:
        parts.append(where.strip())
    return ", ".join(parts)


class LocalProvider:
    """Plain-words understanding and a search; no model, no network."""

    name = "local"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    async def reply(self, context: ChatContext, tools: ChatTools) -> AsyncIterator[ChatEvent]:
        understood = understand(
            context.message,
            self.catalog,
            previous=context.previous,
            preferences=context.preferences,
        )
        filters = understood.filters
        if understood.unknown_zip:
            text = (
                f"I don't know the ZIP code {understood.unknown_zip}. "
                "Which ZIP code should I search around?"
            )
            yield TextDelta(text)
            yield Answer(text, [], filters)
            return
        sort = SortOrder.distance if filters.zip else SortOrder.newest
        if filters.deal_rating and not filters.zip:
            sort = SortOrder.best_deal  # asked for deals: the furthest below market first
        if filters.q:
            sort = SortOrder.relevance
        outcome = await tools.search_listings(filters, sort, SHOWN)
        what = "; ".join(understood.recognized) if understood.recognized else "every listing"
        if not outcome.listings:
            text = (
                f"I found no cars for {what}. Try a wider search: a higher price, more miles, "
                "older years or a larger radius."
            )
        else:
            lines = [
                f"I found {outcome.total:,} {'car' if outcome.total == 1 else 'cars'} "
                f"for {what}. "
                + ("The closest matches:" if sort is SortOrder.distance else "The best matches:")
            ]
            lines += [
                f"[{number}] {describe(listing)}"
                for number, listing in enumerate(outcome.listings, start=1)
            ]
            text = "\n".join(lines)
        for line in text.splitlines(keepends=True):
            yield TextDelta(line)
        yield Answer(text, outcome.listings, filters)
