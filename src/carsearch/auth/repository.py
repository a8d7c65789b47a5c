"""All SQL of sign-in: users by identity, sign-in requests, sessions, refresh tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.auth.oidc import Identity
from carsearch.models import AuthRequest, AuthSession, RefreshToken, User


async def user_for_identity(session: AsyncSession, identity: Identity, now: datetime) -> User:
    """The user the provider's subject belongs to; created on first sign-in, linked by
    e-mail when the address already has an account; `last_login_at` moves either way."""
    user = (
        await session.execute(select(User).where(User.google_subject == identity.subject))
    ).scalar_one_or_none()
    if user is None:
        user = (
            await session.execute(select(User).where(User.email == identity.email))
        ).scalar_one_or_none()
    if user is None:
        user = User(email=identity.email, name=identity.name, avatar_url=identity.picture)
        session.add(user)
    user.google_subject = identity.subject
    user.email = identity.email
    user.name = user.name or identity.name
    user.avatar_url = identity.picture or user.avatar_url
    user.last_login_at = now
    await session.flush()
    return user


async def user_for_email(session: AsyncSession, email: str, now: datetime) -> User:
    statement = (
        insert(User)
        .values(email=email, last_login_at=now)
        .on_conflict_do_update(index_elements=[User.email], set_={"last_login_at": now})
        .returning(User.id)
    )
    user_id = (await session.execute(statement)).scalar_one()
    user = await session.get(User, user_id, populate_existing=True)
    assert user is not None
    return user


async def add_request(session: AsyncSession, state: str, nonce: str, verifier: str) -> None:
    session.add(AuthRequest(state=state, nonce=nonce, code_verifier=verifier))
    await session.flush()


async def take_request(session: AsyncSession, state: str, since: datetime) -> AuthRequest | None:
    """The sign-in request of `state`, deleted as it is read: a state works once."""
    row = (
        await session.execute(
            delete(AuthRequest)
            .where(AuthRequest.state == state, AuthRequest.created_at >= since)
            .returning(AuthRequest)
        )
    ).scalar_one_or_none()
    return row


async def forget_requests_before(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(AuthRequest).where(AuthRequest.created_at < before))


async def add_session(session: AsyncSession, session_id: str, user_id: int) -> None:
    session.add(AuthSession(id=session_id, user_id=user_id))
    await session.flush()


async def add_refresh_token(
    session: AsyncSession, token_hash: str, session_id: str, expires_at: datetime
) -> None:
    session.add(RefreshToken(token_hash=token_hash, session_id=session_id, expires_at=expires_at))
    await session.flush()


async def refresh_token_for_update(
    session: AsyncSession, token_hash: str
) -> tuple[RefreshToken, AuthSession] | None:
    """The token and its session, locked: two refreshes with one token cannot both win."""
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def session_for_update(session: AsyncSession, session_id: str) -> AuthSession | None:
    return (
        await session.execute(
            select(AuthSession).where(AuthSession.id == session_id).with_for_update()
        )
    ).scalar_one_or_none()


async def revoke_session(
    session: AsyncSession, session_id: str, reason: str, now: datetime
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


async def active_user(session: AsyncSession, user_id: int, session_id: str) -> User | None:
    """The user, if the sign-in session its token names is still open."""
    return (
        await session.execute(
            select(User)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                User.id == user_id,
                AuthSession.id == session_id,
                AuthSession.revoked_at.is_(None),
            )
        )
    ).scalar_one_or_none()
