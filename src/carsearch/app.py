"""The FastAPI application: lifespan, middleware, error handlers, routers, offline docs."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from carsearch import __version__
from carsearch.auth.oidc import OidcClient
from carsearch.auth.routes import ACCESS_COOKIE
from carsearch.auth.routes import dev_router as dev_auth_router
from carsearch.auth.routes import router as auth_router
from carsearch.auth.service import AuthService
from carsearch.auth.store import create_refresh_store
from carsearch.auth.tokens import InvalidToken
from carsearch.chat.anthropic_provider import AnthropicProvider
from carsearch.chat.openai_provider import OpenAIProvider
from carsearch.chat.providers import ChatProvider, LocalProvider
from carsearch.chat.routes import router as chat_router
from carsearch.chat.service import ChatService
from carsearch.config import Settings, get_settings
from carsearch.db.engine import create_async_db_engine, create_sessionmaker, resolve_database_url
from carsearch.dealers.geo import zip_centroid
from carsearch.dealers.routes import router as dealers_router
from carsearch.errors import CarSearchError, RateLimited, Unauthorized
from carsearch.ingest.normalize import Catalog
from carsearch.listings.routes import router as listings_router
from carsearch.observability.middleware import RequestContextMiddleware
from carsearch.observability.multiprocess import forget_this_process
from carsearch.observability.routes import router as operations_router
from carsearch.ratelimit import (
    RateLimitMiddleware,
    RateLimitRules,
    client_ip_identity,
    create_limiter,
)
from carsearch.search.analytics import SearchLog
from carsearch.search.cache import create_cache
from carsearch.search.routes import router as search_router
from carsearch.search.service import SearchService
from carsearch.search.store import IndexReader, IndexStore
from carsearch.users.routes import router as users_router

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            # pydantic prefixes what a validator raised; the message alone reads better.
            "message": str(error.get("msg", "invalid value")).removeprefix("Value error, "),
            "type": error.get("type", "value_error"),
        }
        for error in exc.errors()
    ]


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the API documents for `path`, from the OpenAPI paths (compiled once)."""
    patterns: list[tuple[re.Pattern[str], list[str]]] | None = getattr(
        app.state, "method_patterns", None
    )
    if patterns is None:
        patterns = [
            (
                re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"),
                sorted(method.upper() for method in operations),
            )
            for template, operations in app.openapi()["paths"].items()
        ]
        app.state.method_patterns = patterns
    return next((methods for pattern, methods in patterns if pattern.match(path)), [])


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CarSearchError)
    async def domain_error(request: Request, exc: CarSearchError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, Unauthorized):
            # RFC 6750: name the scheme; say why a token was refused, and nothing more when
            # there was no token at all.
            challenge = 'Bearer realm="carsearch"'
            if not (isinstance(exc, InvalidToken) and exc.missing):
                reason = exc.message.replace('"', "'")
                challenge += f', error="invalid_token", error_description="{reason}"'
            headers = {"WWW-Authenticate": challenge}
        return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else None
        if first is None:
            message = "invalid request"
        elif len(first["loc"]) > 1:
            # The field, not the position in a list ("body_styles", not "0").
            field = next(part for part in reversed(first["loc"]) if not part.isdigit())
            message = f"invalid {field}: {first['message']}"
        else:  # a rule across several fields, such as an ordered range
            message = f"invalid parameters: {first['message']}"
        return error_response(422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names the methods of one route; a path can have several (GET and
            # PUT of the profile are two routes), and Allow must list them all.
            allowed = _allowed_methods(request.app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
        return error_response(exc.status_code, code, message, headers=headers or None)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The server restarted, the pool's connection was dropped, the server is down.
        logger.warning("database unavailable: %s", str(exc.orig or exc).splitlines()[0])
        return error_response(
            503,
            "service_unavailable",
            "the database is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error")
        request_id = getattr(request.state, "request_id", None)
        return error_response(
            500,
            "internal_error",
            "internal error; the request id identifies it in the logs",
            [{"request_id": request_id}],
        )


def _install_docs(app: FastAPI) -> None:
    """Swagger UI and ReDoc from assets shipped in a package: they work with no network."""
    app.mount("/docs-assets", StaticFiles(directory=_DOCS_ASSETS), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API reference",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )


def _caller(auth: AuthService) -> Callable[[Scope], str]:
    """Rate limits count per user for a valid access token, else per client address. The
    token is only decoded (no database): a revoked one still counts against its user."""

    def identify(scope: Scope) -> str:
        token = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    token = credentials.strip()
            elif name == b"cookie" and token is None:
                morsel = SimpleCookie(value.decode("latin-1")).get(ACCESS_COOKIE)
                token = morsel.value if morsel is not None else None
        if token:
            try:
                return f"user:{auth.issuer.decode_access(token).user_id}"
            except InvalidToken:
                pass
        return client_ip_identity(scope)

    return identify


def _chat_provider(settings: Settings) -> ChatProvider:
    if settings.chat_provider == "anthropic":
        return AnthropicProvider(
            api_key=settings.chat_api_key or "",
            model=settings.chat_model or "claude-sonnet-4-5",
            base_url=settings.chat_base_url,
            timeout_seconds=settings.chat_timeout_seconds,
        )
    if settings.chat_provider == "openai":
        return OpenAIProvider(
            api_key=settings.chat_api_key or "",
            model=settings.chat_model or "gpt-4o-mini",
            base_url=settings.chat_base_url,
            timeout_seconds=settings.chat_timeout_seconds,
        )
    return LocalProvider(Catalog.from_packaged())


def _oidc_client(settings: Settings) -> OidcClient | None:
    if not (settings.oidc_client_id and settings.oidc_client_secret):
        return None  # sign-in answers 503 "not configured" until these are set
    return OidcClient(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=settings.oidc_redirect,
        scopes=settings.oidc_scopes,
    )


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    """Build the app. Tests pass their own engine; otherwise the lifespan creates one."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned_engine = None
        if engine is None:
            owned_engine = create_async_db_engine(resolve_database_url(settings), settings)
        app.state.engine = engine or owned_engine
        app.state.sessionmaker = create_sessionmaker(app.state.engine)
        # The ZIP table takes about a second to build: pay that at start, off the loop,
        # not on the first radius search.
        await asyncio.to_thread(zip_centroid, "10001")
        if settings.search_cache_ttl_seconds > 0:
            app.state.search_cache = create_cache(
                settings.redis_url,
                max_entries=settings.search_cache_max_entries,
                ttl_seconds=settings.search_cache_ttl_seconds,
            )
        if settings.search_analytics:
            app.state.search_log = SearchLog(app.state.engine)
            app.state.search_log.start()
        try:
            yield
        finally:
            if app.state.rate_limiter is not None:
                await app.state.rate_limiter.close()
            provider = app.state.chat_service.provider
            for closing in ("aclose", "close"):
                if hasattr(provider, closing):
                    await getattr(provider, closing)()
                    break
            await app.state.auth_service.refresh_store.close()
            if app.state.auth_service.oidc is not None:
                await app.state.auth_service.oidc.aclose()
            if app.state.search_log is not None:
                await app.state.search_log.stop()
            if app.state.search_cache is not None:
                await app.state.search_cache.close()
            if owned_engine is not None:
                await owned_engine.dispose()
            forget_this_process()

    app = FastAPI(
        title="CarSearch API",
        version=__version__,
        description=(
            "Search used and new car listings: filters, facets, ZIP radius, price history, "
            "accounts with favorites and alerts, and an assistant that answers with cited "
            "listings. Every response is an envelope: "
            '`{"data": ..., "meta": ...}` or `{"error": {"code", "message", "details"}}`.'
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.search_service = SearchService(IndexReader(IndexStore(settings.index_dir)))
    app.state.search_cache = None  # set by the lifespan, as is the search log
    app.state.search_log = None
    app.state.chat_service = ChatService(_chat_provider(settings), app.state.search_service)
    app.state.auth_service = AuthService(
        settings, _oidc_client(settings), create_refresh_store(settings.redis_url)
    )
    _install_error_handlers(app)
    if settings.rate_limit_enabled:
        # Inside CORS, so that a 429 carries CORS headers a browser can read.
        app.state.rate_limiter = create_limiter(settings.redis_url)
        app.add_middleware(
            RateLimitMiddleware,
            limiter=app.state.rate_limiter,
            rules=RateLimitRules.parse(settings.rate_limits),
            identify=_caller(app.state.auth_service),
        )
    else:
        app.state.rate_limiter = None
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-Client-Id"],
        expose_headers=[
            "X-Request-ID",
            "X-Client-Id",
            "X-Cache",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ],
    )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(operations_router)
    # The search router's /listings comes first; /listings/{vin} is the listings router's.
    for router in (
        search_router,
        listings_router,
        dealers_router,
        auth_router,
        users_router,
        chat_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    if settings.auth_dev_login:
        app.include_router(dev_auth_router, prefix=API_PREFIX)
    _install_docs(app)
    return app
