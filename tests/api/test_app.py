from __future__ import annotations

import pytest
from httpx import AsyncClient
from pydantic import ValidationError

from carsearch.config import PLACEHOLDER_SECRET, Settings


async def test_healthz_answers(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_migration(client: AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_unknown_route_gets_the_error_envelope(client: AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": []}
    }


async def test_wrong_method_gets_the_error_envelope(client: AsyncClient) -> None:
    response = await client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_request_id_is_generated_and_echoed(client: AsyncClient) -> None:
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    # An id that could forge log lines or headers is replaced, not echoed.
    forged = await client.get("/healthz", headers={"X-Request-ID": "a b\tc" * 40})
    assert forged.headers["x-request-id"] != "a b\tc" * 40


async def test_cors_allows_configured_origins_only(client: AsyncClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET"}
    allowed = await client.options(
        "/healthz", headers={"Origin": "http://localhost:3000", **preflight}
    )
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    refused = await client.options(
        "/healthz", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers


async def test_docs_work_offline(client: AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert "cdn." not in docs.text
    redoc = await client.get("/redoc")
    assert "/docs-assets/redoc.standalone.js" in redoc.text
    assert "fonts.googleapis" not in redoc.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        served = await client.get(f"/docs-assets/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 100_000
    schema = (await client.get("/openapi.json")).json()
    assert schema["info"]["title"] == "CarSearch API"


def test_production_refuses_the_placeholder_secret() -> None:
    with pytest.raises(ValidationError, match="CARSEARCH_SECRET_KEY"):
        Settings(env="production", secret_key=PLACEHOLDER_SECRET)
    with pytest.raises(ValidationError, match="CARSEARCH_SECRET_KEY"):
        Settings(env="production", secret_key="short")
    assert Settings(env="production", secret_key="x" * 40).env == "production"


def test_cors_origins_read_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARSEARCH_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_database_url_must_be_postgresql() -> None:
    with pytest.raises(ValidationError, match="postgresql"):
        Settings(database_url="mysql://root@localhost/x")


def test_production_refuses_the_development_sign_in() -> None:
    with pytest.raises(ValueError, match="AUTH_DEV_LOGIN"):
        Settings(env="production", secret_key="x" * 40, auth_dev_login=True)


async def test_development_sign_in_exists_only_when_turned_on(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/dev-login", json={"email": "a@example.com"})
    assert response.status_code == 404


def test_bad_rate_limits_are_a_settings_error() -> None:
    with pytest.raises(ValueError, match="search=120/60"):
        Settings(rate_limits="search=abc")
