"""Sign-in rules: OIDC sign-in, development sign-in, refresh rotation, sign-out, and who
a request's token belongs to. No HTTP."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.auth import repository
from carsearch.auth.oidc import OidcClient
from carsearch.auth.store import PostgresRefreshStore, RefreshStore
from carsearch.auth.tokens import (
    InvalidToken,
    TokenIssuer,
    new_refresh_token,
    new_session_id,
    token_hash,
)
from carsearch.config import Settings
from carsearch.errors import BadRequest, ServiceUnavailable
from carsearch.models import User

# A sign-in must come back from the provider within this long.
SIGN_IN_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class TokenPair:
    user: User
    access_token: str
    access_expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


class AuthService:
    def __init__(
        self,
        settings: Settings,
        oidc: OidcClient | None,
        refresh_store: RefreshStore | None = None,
    ) -> None:
        self.settings = settings
        self.issuer = TokenIssuer(settings.secret_key, settings.access_token_minutes)
        self.oidc = oidc
        self.refresh_store: RefreshStore = refresh_store or PostgresRefreshStore()
        self.refresh_lifetime = timedelta(days=settings.refresh_token_days)

    def _provider(self) -> OidcClient:
        if self.oidc is None:
            raise ServiceUnavailable(
                "sign-in is not configured: set CARSEARCH_OIDC_CLIENT_ID and "
                "CARSEARCH_OIDC_CLIENT_SECRET (see docs/AUTH-GUIDE.md)"
            )
        return self.oidc

    async def sign_in_url(self, db: AsyncSession) -> str:
        """Where to send the browser: the provider, with a fresh state, nonce and PKCE."""
        provider = self._provider()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        now = datetime.now(UTC)
        await repository.forget_requests_before(db, now - SIGN_IN_WINDOW)
        await repository.add_request(db, state, nonce, verifier)
        return await provider.authorization_url(state=state, nonce=nonce, code_verifier=verifier)

    async def complete_sign_in(self, db: AsyncSession, code: str, state: str) -> TokenPair:
        provider = self._provider()
        now = datetime.now(UTC)
        request = await repository.take_request(db, state, now - SIGN_IN_WINDOW)
        if request is None:
            raise BadRequest(
                "unknown or expired sign-in state: start again from /api/v1/auth/google/login"
            )
        # The request is consumed even if what follows fails: a state never works twice.
        await db.commit()
        identity = await provider.sign_in(
            code=code, code_verifier=request.code_verifier, nonce=request.nonce
        )
        user = await repository.user_for_identity(db, identity, now)
        return await self._open_session(db, user, now)

    async def dev_sign_in(self, db: AsyncSession, email: str) -> TokenPair:
        now = datetime.now(UTC)
        user = await repository.user_for_email(db, email.strip().lower(), now)
        return await self._open_session(db, user, now)

    async def _open_session(self, db: AsyncSession, user: User, now: datetime) -> TokenPair:
        session_id = new_session_id()
        await repository.add_session(db, session_id, user.id)
        return await self._issue(db, user, session_id, now)

    async def _issue(
        self, db: AsyncSession, user: User, session_id: str, now: datetime
    ) -> TokenPair:
        refresh = new_refresh_token()
        refresh_expires = now + self.refresh_lifetime
        await self.refresh_store.add(db, token_hash(refresh), session_id, refresh_expires)
        access, access_expires = self.issuer.access_token(user.id, session_id, now)
        return TokenPair(user, access, access_expires, refresh, refresh_expires)

    async def refresh(self, db: AsyncSession, refresh_token: str) -> TokenPair:
        """A new pair for a refresh token, which is used up. A used token presented again
        means someone else has it: the whole session is revoked."""
        now = datetime.now(UTC)
        record = await self.refresh_store.take(db, token_hash(refresh_token))
        if record is None:
            raise InvalidToken("unknown refresh token")
        auth_session = await repository.session_for_update(db, record.session_id)
        if auth_session is None or auth_session.revoked_at is not None:
            raise InvalidToken("session signed out")
        if record.was_used:
            await repository.revoke_session(db, auth_session.id, "refresh token reused", now)
            await db.commit()
            raise InvalidToken("refresh token already used: the session is revoked")
        if record.expires_at <= now:
            raise InvalidToken("refresh token expired")
        auth_session.last_used_at = now
        user = await db.get(User, auth_session.user_id)
        if user is None:
            raise InvalidToken("unknown user")
        return await self._issue(db, user, auth_session.id, now)

    async def sign_out(
        self, db: AsyncSession, *, refresh_token: str | None, access_token: str | None
    ) -> bool:
        """Revoke the session either token names; False when neither names one."""
        now = datetime.now(UTC)
        session_id = None
        if refresh_token:
            session_id = await self.refresh_store.session_of(db, token_hash(refresh_token))
        if session_id is None and access_token:
            try:
                session_id = self.issuer.decode_access(access_token).session_id
            except InvalidToken:
                session_id = None
        if session_id is None:
            return False
        await repository.revoke_session(db, session_id, "signed out", now)
        return True

    async def user_for_access_token(self, db: AsyncSession, token: str) -> User:
        claims = self.issuer.decode_access(token)
        user = await repository.active_user(db, claims.user_id, claims.session_id)
        if user is None:
            raise InvalidToken("session signed out")
        return user
