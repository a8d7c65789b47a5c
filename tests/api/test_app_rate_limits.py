"""Rate limits through the real app: headers on answers, a 429 envelope past the limit,
per-address counting for searches, per-user counting for a user's own endpoints, and what
is never counted (health checks, CORS preflights)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Engine, text

LIMITS = "search=3/60,user=2/60,default=100/60"
ORIGIN = "http://localhost:3000"
EMAIL_DOMAIN = "rate-limits.test.example.com"


@pytest.fixture
async def limited_app(
    start_app: Any, search_index: Path
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    # Each app has its own in-process limiter: every test starts with full quotas.
    async with start_app(
        search_index, rate_limit_enabled=True, rate_limits=LIMITS, auth_dev_login=True
    ) as started:
        yield started


@pytest.fixture
def emails(sync_engine: Engine) -> Iterator[list[str]]:
    """Addresses signed in by the test; their users are deleted after it."""
    created: list[str] = []
    yield created
    with sync_engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE email = ANY(:e)"), {"e": created})


async def access_token(client: AsyncClient, emails: list[str]) -> str:
    email = f"{uuid.uuid4().hex}@{EMAIL_DOMAIN}"
    emails.append(email)
    response = await client.post("/api/v1/auth/dev-login", json={"email": email})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    token: str = response.json()["data"]["access_token"]
    return token


def limit_headers(response: httpx.Response) -> tuple[int, int, int]:
    """RateLimit-Limit, -Remaining and -Reset."""
    return (
        int(response.headers["ratelimit-limit"]),
        int(response.headers["ratelimit-remaining"]),
        int(response.headers["ratelimit-reset"]),
    )


def assert_limited(response: httpx.Response, group: str, limit: int) -> int:
    """A 429 envelope for `group`; returns its Retry-After."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"] == [{"group": group, "limit": limit, "period_seconds": 60.0}]
    retry_after = int(response.headers["retry-after"])
    assert f"retry in {retry_after} s" in error["message"]
    assert limit_headers(response)[:2] == (limit, 0)
    return retry_after


async def test_searches_carry_limit_headers_and_the_fourth_is_refused(
    limited_app: tuple[FastAPI, AsyncClient],
) -> None:
    _app, client = limited_app
    answers = [
        await client.get("/api/v1/listings", params={"page_size": 1}),
        await client.get("/api/v1/facets"),
        await client.get("/api/v1/listings", params={"make": "Toyota", "page_size": 1}),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [limit_headers(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0)]
    # One request back every 20 s; the whole quota back in at most a minute.
    assert all(0 < limit_headers(a)[2] <= 60 for a in answers)

    refused = await client.get("/api/v1/listings", params={"page_size": 1})
    retry_after = assert_limited(refused, "search", 3)
    assert 1 <= retry_after <= 20
    assert 0 < limit_headers(refused)[2] <= 60
    # The search group is every search resource, not one path.
    assert_limited(await client.get("/api/v1/filters"), "search", 3)
    # A route of another group still answers, with that group's figures.
    other = await client.get("/api/v1/no-such-resource")
    assert other.status_code == 404
    assert limit_headers(other)[:2] == (100, 99)


async def test_searches_count_per_client_address(limited_app: tuple[FastAPI, AsyncClient]) -> None:
    app, client = limited_app
    for _ in range(3):
        assert (await client.get("/api/v1/facets")).status_code == 200
    assert_limited(await client.get("/api/v1/facets"), "search", 3)
    async with AsyncClient(
        transport=ASGITransport(app=app, client=("203.0.113.9", 40000)), base_url="http://t"
    ) as elsewhere:
        answer = await elsewhere.get("/api/v1/facets")
    assert answer.status_code == 200
    assert limit_headers(answer)[:2] == (3, 2)


async def test_a_refusal_is_readable_by_a_browser_of_an_allowed_origin(
    limited_app: tuple[FastAPI, AsyncClient],
) -> None:
    _app, client = limited_app
    for _ in range(3):
        await client.get("/api/v1/facets", headers={"Origin": ORIGIN})
    refused = await client.get("/api/v1/facets", headers={"Origin": ORIGIN})
    assert_limited(refused, "search", 3)
    assert refused.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in refused.headers["access-control-expose-headers"].split(",")
    }
    assert {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed


async def test_user_endpoints_count_per_user(
    limited_app: tuple[FastAPI, AsyncClient], emails: list[str]
) -> None:
    _app, client = limited_app
    ann = {"Authorization": f"Bearer {await access_token(client, emails)}"}
    bob = {"Authorization": f"Bearer {await access_token(client, emails)}"}
    for headers in (ann, bob):
        first = await client.get("/api/v1/user/profile", headers=headers)
        second = await client.get("/api/v1/user/favorites", headers=headers)
        assert [first.status_code, second.status_code] == [200, 200]
        assert [limit_headers(a)[:2] for a in (first, second)] == [(2, 1), (2, 0)]
        assert_limited(await client.get("/api/v1/user/searches", headers=headers), "user", 2)
    # The same address without a token has a quota of its own: refused as unsigned, not
    # as too many.
    anonymous = await client.get("/api/v1/user/profile")
    assert anonymous.status_code == 401
    assert limit_headers(anonymous)[:2] == (2, 1)
    # A token that does not decode names nobody: it counts against the address too.
    forged = await client.get("/api/v1/user/profile", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    assert limit_headers(forged)[:2] == (2, 0)
    assert_limited(await client.get("/api/v1/user/profile"), "user", 2)
    # Searches are another group: the users' quotas there are untouched.
    search = await client.get("/api/v1/facets", headers=ann)
    assert search.status_code == 200
    assert limit_headers(search)[:2] == (3, 2)


async def test_health_checks_and_the_api_description_are_never_limited(
    limited_app: tuple[FastAPI, AsyncClient],
) -> None:
    _app, client = limited_app
    for path in ("/healthz", "/openapi.json"):
        for _ in range(110):  # more than any limit
            answer = await client.get(path)
            assert answer.status_code == 200
            assert "ratelimit-limit" not in answer.headers


async def test_cors_preflights_are_never_limited(limited_app: tuple[FastAPI, AsyncClient]) -> None:
    _app, client = limited_app
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    for _ in range(5):
        answer = await client.options("/api/v1/listings", headers=preflight)
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "ratelimit-limit" not in answer.headers
    # The preflights used none of the quota.
    search = await client.get("/api/v1/listings", params={"page_size": 1})
    assert limit_headers(search)[:2] == (3, 2)
