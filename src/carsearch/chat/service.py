"""Chat rules: conversations, the provider's turn, citations, history. No HTTP.

A turn stores the user's message first (it is kept whatever happens next), then runs the
provider; only a complete answer is stored, with its citations and filters, and becomes
the conversation's search context. A provider failure leaves the history as it was, plus
the user's message.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.chat import repository
from carsearch.chat.citations import cite
from carsearch.chat.providers import (
    Answer,
    ChatContext,
    ChatProvider,
    SearchOutcome,
    TextDelta,
)
from carsearch.chat.schemas import (
    ChatAnswer,
    ChatHistory,
    ChatMessageOut,
    ChatRequest,
    ShownListing,
)
from carsearch.errors import NotFound
from carsearch.listings.service import get_listing_detail
from carsearch.models import ChatMessage, User
from carsearch.search.schemas import SearchFilters, SearchParams, SortOrder
from carsearch.search.service import SearchService

# Roughly four characters a token: what a provider is shown of the past stays under this.
HISTORY_BUDGET_TOKENS = 3_000


def trim_history(messages: Sequence[ChatMessage], budget_tokens: int) -> list[tuple[str, str]]:
    """The most recent messages whose text fits the budget, oldest first."""
    kept: list[tuple[str, str]] = []
    used = 0
    for message in reversed(messages):
        cost = len(message.content) // 4 + 4
        if used + cost > budget_tokens:
            break
        kept.append((message.role, message.content))
        used += cost
    return list(reversed(kept))


class SearchTools:
    """The provider's tools: search and a listing's detail, on this request's session."""

    def __init__(self, db: AsyncSession, search: SearchService) -> None:
        self.db = db
        self.search = search

    async def search_listings(
        self, filters: SearchFilters, sort: SortOrder, limit: int
    ) -> SearchOutcome:
        params = SearchParams.model_validate(
            {**filters.model_dump(), "sort": sort, "page_size": limit}
        )
        area = await self.search.area(self.db, params)
        page = self.search.search(params, area)
        count = max(1, len(page.results))
        shown = [
            ShownListing(
                vin=result.vin,
                title=" ".join(
                    str(part)
                    for part in (result.year, result.make, result.model, result.trim)
                    if part
                ),
                price=result.price,
                mileage=result.mileage,
                url=f"/api/v1/listings/{result.vin}",
                dealer=", ".join(p for p in (result.dealer_name, result.dealer_city) if p) or None,
                distance_miles=result.distance_miles,
                deal=result.deal.rating if result.deal is not None else None,
                relevance=round(1 - position / count, 2),
            )
            for position, result in enumerate(page.results)
        ]
        return SearchOutcome(shown, page.total)

    async def get_listing(self, vin: str) -> dict[str, Any] | None:
        try:
            detail = await get_listing_detail(self.db, vin)
        except NotFound:
            return None
        return detail.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class Owner:
    user: User | None
    client_id: str | None

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None


class ChatService:
    def __init__(self, provider: ChatProvider, search: SearchService) -> None:
        self.provider = provider
        self.search = search

    async def _conversation_id(
        self, db: AsyncSession, owner: Owner, requested: str | None
    ) -> tuple[str, SearchFilters | None, list[tuple[str, str]]]:
        if requested is not None:
            found = await repository.conversation(
                db, requested, user_id=owner.user_id, client_id=owner.client_id
            )
            if found is None:
                raise NotFound(f"no conversation {requested}")
            history = trim_history(await repository.messages(db, found.id), HISTORY_BUDGET_TOKENS)
            previous = SearchFilters.model_validate(found.filters) if found.filters else None
            return found.id, previous, history
        created = await repository.add_conversation(
            db, uuid.uuid4().hex, user_id=owner.user_id, client_id=owner.client_id
        )
        return created.id, None, []

    async def turn(
        self, db: AsyncSession, owner: Owner, request: ChatRequest
    ) -> AsyncIterator[tuple[str, Any]]:
        """Events of one turn: ("conversation", id), ("delta", text)..., then ("answer",
        ChatAnswer). Raises the provider's error after the user's message is stored."""
        conversation_id, previous, history = await self._conversation_id(
            db, owner, request.conversation_id
        )
        await repository.add_message(db, conversation_id, "user", request.message)
        await db.commit()  # the user's message is kept, whatever the provider does
        yield "conversation", conversation_id
        preferences = owner.user.preferences if owner.user is not None else {}
        context = ChatContext(request.message, history, previous, preferences or {})
        final: Answer | None = None
        async for event in self.provider.reply(context, SearchTools(db, self.search)):
            if isinstance(event, TextDelta):
                yield "delta", event.text
            else:
                final = event
        assert final is not None, "a provider ends with an Answer"
        text, citations = cite(final.text, final.shown)
        filters = final.filters.model_dump(mode="json", exclude_defaults=True)
        await repository.add_message(
            db,
            conversation_id,
            "assistant",
            text,
            citations=[citation.model_dump(mode="json") for citation in citations],
            filters=filters,
        )
        await repository.set_filters(db, conversation_id, filters)
        await db.commit()
        yield (
            "answer",
            ChatAnswer(
                conversation_id=conversation_id, answer=text, citations=citations, filters=filters
            ),
        )

    async def history(self, db: AsyncSession, owner: Owner, conversation_id: str) -> ChatHistory:
        found = await repository.conversation(
            db, conversation_id, user_id=owner.user_id, client_id=owner.client_id
        )
        if found is None:
            raise NotFound(f"no conversation {conversation_id}")
        return ChatHistory(
            conversation_id=found.id,
            messages=[
                ChatMessageOut.model_validate(message)
                for message in await repository.messages(db, found.id)
            ],
            filters=found.filters,
        )

    async def forget(self, db: AsyncSession, owner: Owner, conversation_id: str | None) -> int:
        return await repository.delete_conversations(
            db,
            user_id=owner.user_id,
            client_id=owner.client_id,
            conversation_id=conversation_id,
        )
