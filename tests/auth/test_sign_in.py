"""Sign-in end to end against a real OpenID provider on loopback, tokens, and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from app_settings import settings_for_tests
from fake_oidc import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    FakeOidcProvider,
    OidcUser,
    running_fake_oidc,
)
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import AsyncEngine

from carsearch.app import create_app


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOidcProvider]:
    with running_fake_oidc() as running:
        yield running


@pytest.fixture
async def signed_app(
    provider: FakeOidcProvider, async_engine: AsyncEngine, search_index: Path
) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    provider.reset()
    settings = settings_for_tests(
        search_index,
        oidc_issuer=provider.base_url,
        oidc_client_id=DEFAULT_CLIENT_ID,
        oidc_client_secret=DEFAULT_CLIENT_SECRET,
        oidc_redirect_uri=DEFAULT_REDIRECT_URI,
    )
    app = create_app(settings, engine=async_engine)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield app, client


async def begin(client: AsyncClient) -> dict[str, str]:
    """The browser's round trip: our login redirect, the provider's consent redirect; returns
    the callback's query (code and state)."""
    login = await client.get("/api/v1/auth/google/login")
    assert login.status_code == 302
    authorize = urlsplit(login.headers["location"])
    sent = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert sent["code_challenge_method"] == "S256"
    assert {"state", "nonce", "code_challenge"} <= set(sent)
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(login.headers["location"])
    assert consent.status_code == 302, consent.text
    callback = urlsplit(consent.headers["location"])
    return {k: v[0] for k, v in parse_qs(callback.query).items()}


async def callback(client: AsyncClient, query: dict[str, str]) -> httpx.Response:
    return await client.get("/api/v1/auth/google/callback", params=query)


def assert_refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


async def test_sign_in_creates_the_user_and_returns_tokens_and_cookies(
    signed_app: tuple[FastAPI, AsyncClient],
) -> None:
    _app, client = signed_app
    response = await callback(client, await begin(client))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["token_type"] == "Bearer"
    assert 850 < data["expires_in"] <= 900
    assert data["user"]["email"] == "driver@example.com"
    assert data["user"]["last_login_at"] is not None
    cookies = response.headers.get_list("set-cookie")
    assert any(
        c.startswith("carsearch_access=") and "HttpOnly" in c and "Secure" in c for c in cookies
    )
    assert any(c.startswith("carsearch_refresh=") and "SameSite=lax" in c for c in cookies)
    profile = await client.get(
        "/api/v1/user/profile", headers={"Authorization": f"Bearer {data['access_token']}"}
    )
    assert profile.json()["data"]["name"] == "Dana Driver"
    # A second sign-in is the same user, seen again.
    again = (await callback(client, await begin(client))).json()["data"]
    assert again["user"]["id"] == data["user"]["id"]


async def test_a_state_we_did_not_send_is_refused(signed_app: tuple[FastAPI, AsyncClient]) -> None:
    _app, client = signed_app
    query = await begin(client)
    assert_refused(await callback(client, {**query, "state": "forged"}), 400, "sign-in state")
    # ... and the real state works once only.
    assert (await callback(client, query)).status_code == 200
    assert_refused(await callback(client, query), 400, "sign-in state")


async def test_a_replayed_code_is_refused(
    signed_app: tuple[FastAPI, AsyncClient], provider: FakeOidcProvider
) -> None:
    _app, client = signed_app
    first = await begin(client)
    assert (await callback(client, first)).status_code == 200
    # A new sign-in (new state) carrying the old, used code.
    second = await begin(client)
    response = await callback(client, {"code": first["code"], "state": second["state"]})
    assert_refused(response, 400, "refused the sign-in code")


@pytest.mark.parametrize(
    ("knob", "value", "status", "words"),
    [
        ("sign_with_foreign_key", True, 401, "signature does not verify"),
        ("audience_override", "someone-else", 401, "not valid for us"),
        ("issuer_override", "https://evil.example", 401, "not valid for us"),
        ("expires_in_seconds", -600, 401, "not valid for us"),
        ("omit_nonce", True, 401, "nonce"),
        ("nonce_override", "another-nonce", 401, "nonce"),
        ("user", OidcUser(email_verified=False), 403, "not verified"),
    ],
)
async def test_an_id_token_that_does_not_hold_up_is_refused(
    signed_app: tuple[FastAPI, AsyncClient],
    provider: FakeOidcProvider,
    knob: str,
    value: Any,
    status: int,
    words: str,
) -> None:
    _app, client = signed_app
    setattr(provider, knob, value)
    response = await callback(client, await begin(client))
    assert_refused(response, status, words)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_the_provider_saying_no_is_a_clear_400(
    signed_app: tuple[FastAPI, AsyncClient],
) -> None:
    _app, client = signed_app
    response = await callback(client, {"error": "access_denied", "state": "x"})
    assert_refused(response, 400, "access_denied")
    assert_refused(await callback(client, {}), 400, "code and state")


async def test_sign_in_without_configuration_is_503(
    async_engine: AsyncEngine, search_index: Path
) -> None:
    app = create_app(settings_for_tests(search_index), engine=async_engine)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/api/v1/auth/google/login")
    assert_refused(response, 503, "not configured")


async def test_refresh_rotates_and_a_reused_token_revokes_the_session(
    signed_app: tuple[FastAPI, AsyncClient],
) -> None:
    _app, client = signed_app
    first = (await callback(client, await begin(client))).json()["data"]
    client.cookies.clear()
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200
    second = rotated.json()["data"]
    assert second["refresh_token"] != first["refresh_token"]
    client.cookies.clear()
    # The first token again: someone replayed it. The whole session goes.
    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert_refused(replay, 401, "already used")
    client.cookies.clear()
    for token in (second["refresh_token"],):
        assert_refused(
            await client.post("/api/v1/auth/refresh", json={"refresh_token": token}),
            401,
            "signed out",
        )
    profile = await client.get(
        "/api/v1/user/profile", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert_refused(profile, 401, "signed out")
