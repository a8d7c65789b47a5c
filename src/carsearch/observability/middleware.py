"""Request ids, the access log and the HTTP metrics, as plain ASGI middleware (no
per-request task overhead)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carsearch.observability.logging import request_id_var
from carsearch.observability.metrics import (
    HTTP_EXCEPTIONS,
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    UNMATCHED_ROUTE,
)

access_logger = logging.getLogger("carsearch.access")

REQUEST_ID_HEADER = b"x-request-id"
# A caller's id is kept only when it is short and harmless in logs and headers.
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Any token is a valid method; only these become label values, the rest are "other".
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if _ACCEPTABLE_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RouteTemplates:
    """The template of the route that answered a request (`/api/v1/listings/{vin}`), never
    the path itself: a label per VIN would grow without bound.

    The route FastAPI selected is found in the scope afterwards; its template (the prefix
    of an included router counted) is looked up by identity. A request answered before
    routing (a 429 from the rate limiter, a CORS preflight) is matched against the routes
    here; one no route matches is `unmatched`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._routes: list[tuple[Any, str]] = []
        self._by_route: dict[int, str] = {}
        self._seen = -1

    def of(self, scope: Scope, before_routing: Scope) -> str:
        self._refresh()
        route = scope.get("route")
        template = self._by_route.get(id(route)) if route is not None else None
        return template or self._match(before_routing) or UNMATCHED_ROUTE

    def _refresh(self) -> None:
        routes = getattr(self.app, "routes", None) or []
        if len(routes) == self._seen:
            return
        self._seen = len(routes)
        try:
            from fastapi.routing import iter_route_contexts
        except ImportError:  # FastAPI before route contexts: included routes are copied
            contexts: list[Any] = list(routes)
            originals: list[Any] = list(routes)
        else:
            contexts = list(iter_route_contexts(routes))
            originals = [context.original_route for context in contexts]
        self._routes = [
            (context, template)
            for context in contexts
            if isinstance(template := getattr(context, "path_format", None), str)
        ]
        self._by_route = {}
        for original, context in zip(originals, contexts, strict=True):
            template = getattr(context, "path_format", None)
            if isinstance(template, str):
                # A route included under two prefixes has no single template: match it.
                known = self._by_route.setdefault(id(original), template)
                if known != template:
                    self._by_route[id(original)] = ""

    def _match(self, scope: Scope) -> str | None:
        partial = None
        for route, template in self._routes:
            try:
                match, _child = route.matches(scope)
            except Exception:  # a route that cannot judge this scope does not match it
                continue
            if match is Match.FULL:
                return template
            if match is Match.PARTIAL and partial is None:
                partial = template
        return partial


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: RouteTemplates | None = None

    def _route_template(self, scope: Scope, before_routing: Scope) -> str:
        if self._templates is None or self._templates.app is not scope.get("app"):
            self._templates = RouteTemplates(scope.get("app"))
        return self._templates.of(scope, before_routing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        # Routing rewrites the path of a mount's scope; matching needs it as it came.
        before_routing = {
            key: scope[key] for key in ("type", "method", "path", "root_path") if key in scope
        }

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception as exc:
            # Answered 500 by the error handler already; counted here, where the route is known.
            route = self._route_template(scope, before_routing)
            HTTP_EXCEPTIONS.labels(route, type(exc).__name__).inc()
            raise
        finally:
            elapsed = time.perf_counter() - started
            method = scope["method"]
            label = method if method in _KNOWN_METHODS else "other"
            route = self._route_template(scope, before_routing)
            HTTP_REQUESTS.labels(label, route, status).inc()
            HTTP_REQUEST_DURATION.labels(label, route, status).observe(elapsed)
            access_logger.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)
