"""Refresh rotation and reuse detection with either token store: PostgreSQL or Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from app_settings import settings_for_tests
from redis_for_tests import redis_url
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.auth.service import AuthService
from carsearch.auth.store import PostgresRefreshStore, RedisRefreshStore, RefreshStore
from carsearch.auth.tokens import InvalidToken, token_hash
from carsearch.errors import ServiceUnavailable


@pytest.fixture(params=["postgres", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RefreshStore]:
    chosen: RefreshStore = (
        PostgresRefreshStore() if request.param == "postgres" else RedisRefreshStore(redis_url())
    )
    yield chosen
    await chosen.close()


async def test_rotation_then_reuse_revokes_the_session(
    db_session: AsyncSession, store: RefreshStore
) -> None:
    auth = AuthService(settings_for_tests(), None, store)
    first = await auth.dev_sign_in(db_session, f"store-{uuid.uuid4().hex[:8]}@example.com")
    second = await auth.refresh(db_session, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert (await auth.user_for_access_token(db_session, second.access_token)).id == first.user.id
    with pytest.raises(InvalidToken, match="already used"):
        await auth.refresh(db_session, first.refresh_token)
    # The reuse ended the session: the newest tokens are refused too.
    with pytest.raises(InvalidToken, match="signed out"):
        await auth.refresh(db_session, second.refresh_token)
    with pytest.raises(InvalidToken, match="signed out"):
        await auth.user_for_access_token(db_session, second.access_token)
    with pytest.raises(InvalidToken, match="unknown"):
        await auth.refresh(db_session, "never-issued-refresh-token")


async def test_sign_out_by_refresh_token(db_session: AsyncSession, store: RefreshStore) -> None:
    auth = AuthService(settings_for_tests(), None, store)
    pair = await auth.dev_sign_in(db_session, f"out-{uuid.uuid4().hex[:8]}@example.com")
    assert await store.session_of(db_session, token_hash(pair.refresh_token)) is not None
    assert await auth.sign_out(db_session, refresh_token=pair.refresh_token, access_token=None)
    with pytest.raises(InvalidToken, match="signed out"):
        await auth.user_for_access_token(db_session, pair.access_token)


async def test_an_unreachable_redis_fails_closed(db_session: AsyncSession) -> None:
    store = RedisRefreshStore("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    auth = AuthService(settings_for_tests(), None, store)
    try:
        with pytest.raises(ServiceUnavailable, match="token store"):
            await auth.dev_sign_in(db_session, f"down-{uuid.uuid4().hex[:8]}@example.com")
        with pytest.raises(ServiceUnavailable, match="token store"):
            await auth.refresh(db_session, "some-refresh-token-value")
    finally:
        await store.close()
