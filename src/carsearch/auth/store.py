"""Where refresh tokens live: PostgreSQL, or Redis when `REDIS_URL` is set.

Either way only a token's SHA-256 is stored, with its session and expiry, and using a
token marks it used in the same atomic step that reads it: two refreshes with one token
cannot both succeed, and the second is seen as a reuse. Sessions themselves (and their
revocation) always live in PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.auth import repository
from carsearch.errors import ServiceUnavailable

KEY_PREFIX = "carsearch:refresh:"


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    session_id: str
    expires_at: datetime
    was_used: bool  # already used before this take: a reuse


class RefreshStore(Protocol):
    backend: str

    async def add(
        self, db: AsyncSession, token_hash: str, session_id: str, expires_at: datetime
    ) -> None: ...

    async def take(self, db: AsyncSession, token_hash: str) -> RefreshRecord | None:
        """The token's record, marked used from now on; None if unknown."""

    async def session_of(self, db: AsyncSession, token_hash: str) -> str | None: ...

    async def close(self) -> None: ...


class PostgresRefreshStore:
    backend = "postgres"

    async def add(
        self, db: AsyncSession, token_hash: str, session_id: str, expires_at: datetime
    ) -> None:
        await repository.add_refresh_token(db, token_hash, session_id, expires_at)

    async def take(self, db: AsyncSession, token_hash: str) -> RefreshRecord | None:
        found = await repository.refresh_token_for_update(db, token_hash)
        if found is None:
            return None
        token, _session = found
        record = RefreshRecord(token.session_id, token.expires_at, token.used_at is not None)
        if token.used_at is None:
            token.used_at = datetime.now(UTC)
        return record

    async def session_of(self, db: AsyncSession, token_hash: str) -> str | None:
        found = await repository.refresh_token_for_update(db, token_hash)
        return found[1].id if found else None

    async def close(self) -> None:
        pass


# Reads the record and marks it used in one step: returns {session, expires, used-before}.
_TAKE = """
local values = redis.call('HMGET', KEYS[1], 'session', 'expires', 'used')
if not values[1] then return nil end
redis.call('HSET', KEYS[1], 'used', '1')
return values
"""


class RedisRefreshStore:
    """Records expire with their token; a used one is kept until then, to catch reuse."""

    backend = "redis"

    def __init__(self, url: str, timeout_seconds: float = 0.5) -> None:
        self._redis = Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )
        self._take = self._redis.register_script(_TAKE)

    async def add(
        self, db: AsyncSession, token_hash: str, session_id: str, expires_at: datetime
    ) -> None:
        key = KEY_PREFIX + token_hash
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(
                    key,
                    mapping={
                        "session": session_id,
                        "expires": str(int(expires_at.timestamp())),
                        "used": "0",
                    },
                )
                pipe.expireat(key, int(expires_at.timestamp()) + 1)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None

    async def take(self, db: AsyncSession, token_hash: str) -> RefreshRecord | None:
        try:
            values = await self._take(keys=[KEY_PREFIX + token_hash])
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None
        if not values:
            return None
        session, expires, used = (_text(value) for value in values)
        return RefreshRecord(
            session_id=session,
            expires_at=datetime.fromtimestamp(int(expires), UTC),
            was_used=used == "1",
        )

    async def session_of(self, db: AsyncSession, token_hash: str) -> str | None:
        try:
            session = await self._redis.hget(KEY_PREFIX + token_hash, "session")
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from None
        return _text(session) if session is not None else None

    async def close(self) -> None:
        await self._redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _unavailable(exc: Exception) -> ServiceUnavailable:
    # Refresh fails closed: without the store no token can be checked.
    return ServiceUnavailable(f"the token store is unavailable ({type(exc).__name__})")


def create_refresh_store(redis_url: str | None) -> PostgresRefreshStore | RedisRefreshStore:
    return RedisRefreshStore(redis_url) if redis_url else PostgresRefreshStore()
