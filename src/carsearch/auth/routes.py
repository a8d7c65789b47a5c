from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from carsearch.auth.schemas import (
    DevLoginRequest,
    RefreshRequest,
    SignedOut,
    TokenResponse,
    UserProfile,
)
from carsearch.auth.service import AuthService, TokenPair
from carsearch.auth.tokens import InvalidToken
from carsearch.config import Settings
from carsearch.deps import DbSession
from carsearch.errors import BadRequest
from carsearch.models import User
from carsearch.schemas import NO_NUL, Envelope, error_responses

router = APIRouter(prefix="/auth", tags=["auth"])

ACCESS_COOKIE = "carsearch_access"
REFRESH_COOKIE = "carsearch_refresh"
REFRESH_COOKIE_PATH = "/api/v1/auth"


def get_auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth_service
    return service


Auth = Annotated[AuthService, Depends(get_auth_service)]


def bearer_token(request: Request) -> str | None:
    """The access token of a request: the Authorization header, else the cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("use the Bearer scheme: 'Authorization: Bearer <token>'")
        return token.strip()
    return request.cookies.get(ACCESS_COOKIE)


async def current_user(request: Request, db: DbSession, auth: Auth) -> User:
    token = bearer_token(request)
    if not token:
        raise InvalidToken("missing access token", missing=True)
    return await auth.user_for_access_token(db, token)


CurrentUser = Annotated[User, Depends(current_user)]


def _token_response(pair: TokenPair, settings: Settings) -> JSONResponse:
    now = datetime.now(UTC)
    body: Envelope[TokenResponse] = Envelope(
        data=TokenResponse(
            access_token=pair.access_token,
            expires_in=int((pair.access_expires_at - now).total_seconds()),
            refresh_token=pair.refresh_token,
            refresh_expires_in=int((pair.refresh_expires_at - now).total_seconds()),
            user=UserProfile.model_validate(pair.user),
        )
    )
    response = JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
    cookie = {
        "httponly": True,
        "secure": settings.auth_cookie_secure,
        "samesite": settings.auth_cookie_samesite,
    }
    response.set_cookie(
        ACCESS_COOKIE,
        pair.access_token,
        max_age=int((pair.access_expires_at - now).total_seconds()),
        path="/api",
        **cookie,  # type: ignore[arg-type]
    )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=int((pair.refresh_expires_at - now).total_seconds()),
        path=REFRESH_COOKIE_PATH,
        **cookie,  # type: ignore[arg-type]
    )
    return response


@router.get(
    "/google/login",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Redirect to the provider"}, **error_responses(503)},
    summary="Start signing in",
)
async def sign_in(db: DbSession, auth: Auth) -> RedirectResponse:
    """Redirects the browser to the OpenID provider (Google), with state, nonce and PKCE."""
    url = await auth.sign_in_url(db)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get(
    "/google/callback",
    response_model=Envelope[TokenResponse],
    responses=error_responses(400, 401, 403, 422, 503),
    summary="Finish signing in",
)
async def sign_in_callback(
    request: Request,
    db: DbSession,
    auth: Auth,
    code: Annotated[
        str | None,
        Query(
            max_length=2048,
            pattern=NO_NUL,
            description="Authorization code from the provider.",
            examples=["4/0Ab"],
        ),
    ] = None,
    state: Annotated[
        str | None,
        Query(
            max_length=128,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="The state sent with the sign-in.",
            examples=["x1y2"],
        ),
    ] = None,
    error: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="Set by the provider when sign-in failed.",
            examples=["access_denied"],
        ),
    ] = None,
) -> JSONResponse:
    """The provider sends the browser here; answers with tokens (JSON and cookies)."""
    if error:
        raise BadRequest(f"the provider did not sign you in: {error}")
    if not code or not state:
        raise BadRequest("the callback needs both code and state")
    pair = await auth.complete_sign_in(db, code, state)
    return _token_response(pair, request.app.state.settings)


@router.post(
    "/refresh",
    response_model=Envelope[TokenResponse],
    responses=error_responses(400, 401, 422),
    summary="New tokens for a refresh token",
)
async def refresh_tokens(
    request: Request,
    db: DbSession,
    auth: Auth,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> JSONResponse:
    """Rotates: the refresh token is used up and a new pair returned. Reusing a used one
    signs the whole session out."""
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise InvalidToken("missing refresh token", missing=True)
    pair = await auth.refresh(db, token)
    return _token_response(pair, request.app.state.settings)


@router.post(
    "/logout",
    response_model=Envelope[SignedOut],
    responses=error_responses(400, 422),
    summary="Sign out",
)
async def sign_out(
    request: Request,
    db: DbSession,
    auth: Auth,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> JSONResponse:
    """Revokes the session of the refresh token (or of the access token) and clears the
    cookies. Signing out twice is harmless."""
    refresh = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    try:
        access = bearer_token(request)
    except InvalidToken:
        access = None
    revoked = await auth.sign_out(db, refresh_token=refresh, access_token=access)
    response = JSONResponse(Envelope(data=SignedOut(signed_out=revoked)).model_dump(mode="json"))
    response.delete_cookie(ACCESS_COOKIE, path="/api")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_COOKIE_PATH)
    return response


dev_router = APIRouter(prefix="/auth", tags=["auth"])


@dev_router.post(
    "/dev-login",
    response_model=Envelope[TokenResponse],
    responses=error_responses(400, 422),
    summary="Development sign-in",
)
async def dev_login(request: Request, db: DbSession, auth: Auth, body: DevLoginRequest) -> Response:
    """Tokens for an e-mail address, no provider involved. Exists only when
    CARSEARCH_AUTH_DEV_LOGIN=true (`make run` sets it; production refuses it)."""
    pair = await auth.dev_sign_in(db, body.email)
    return _token_response(pair, request.app.state.settings)
