"""All SQL of chat: conversations (a user's or an anonymous client's) and their messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.models import ChatConversation, ChatMessage


async def conversation(
    session: AsyncSession, conversation_id: str, *, user_id: int | None, client_id: str | None
) -> ChatConversation | None:
    """The conversation, only if it belongs to this user (or this anonymous client)."""
    owner = (
        ChatConversation.user_id == user_id
        if user_id is not None
        else (ChatConversation.user_id.is_(None) & (ChatConversation.client_id == client_id))
    )
    return (
        await session.execute(
            select(ChatConversation).where(ChatConversation.id == conversation_id, owner)
        )
    ).scalar_one_or_none()


async def add_conversation(
    session: AsyncSession, conversation_id: str, *, user_id: int | None, client_id: str | None
) -> ChatConversation:
    created = ChatConversation(id=conversation_id, user_id=user_id, client_id=client_id)
    session.add(created)
    await session.flush()
    await session.refresh(created)
    return created


async def add_message(
    session: AsyncSession,
    conversation_id: str,
    role: str,
    content: str,
    *,
    citations: list[dict[str, Any]] | None = None,
    filters: dict[str, Any] | None = None,
) -> None:
    session.add(
        ChatMessage(
            conversation_id=conversation_id,
            role=role,
            content=content,
            citations=citations or [],
            filters=filters,
        )
    )
    await session.flush()


async def set_filters(session: AsyncSession, conversation_id: str, filters: dict[str, Any]) -> None:
    await session.execute(
        update(ChatConversation)
        .where(ChatConversation.id == conversation_id)
        .values(filters=filters)
    )


async def messages(session: AsyncSession, conversation_id: str) -> Sequence[ChatMessage]:
    result = await session.execute(
        select(ChatMessage)
        .where(ChatMessage.conversation_id == conversation_id)
        .order_by(ChatMessage.id)
    )
    return result.scalars().all()


async def delete_conversations(
    session: AsyncSession,
    *,
    user_id: int | None,
    client_id: str | None,
    conversation_id: str | None,
) -> int:
    owner = (
        ChatConversation.user_id == user_id
        if user_id is not None
        else (ChatConversation.user_id.is_(None) & (ChatConversation.client_id == client_id))
    )
    statement = delete(ChatConversation).where(owner)
    if conversation_id is not None:
        statement = statement.where(ChatConversation.id == conversation_id)
    result = await session.execute(statement.returning(ChatConversation.id))
    return len(result.scalars().all())


async def forget_anonymous_before(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(ChatConversation)
        .where(ChatConversation.user_id.is_(None), ChatConversation.updated_at < before)
        .returning(ChatConversation.id)
    )
    return len(result.scalars().all())
