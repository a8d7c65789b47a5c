"""The fake OpenID Connect provider, driven over its socket the way a relying party would."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fake_oidc import DEFAULT_REDIRECT_URI, FakeOidcProvider, OidcUser, running_fake_oidc
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry, Token

NONCE = "n-0S6_WzA2Mj"
STATE = "af0ifjsldkj"


@dataclass
class Pkce:
    verifier: str
    challenge: str


def make_pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@pytest.fixture(scope="module")
def running_provider() -> Iterator[FakeOidcProvider]:
    with running_fake_oidc() as running:
        yield running


@pytest.fixture
def provider(running_provider: FakeOidcProvider) -> Iterator[FakeOidcProvider]:
    """The module's provider, behaving well again for each test."""
    running_provider.reset()
    yield running_provider
    running_provider.reset()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as http:
        yield http


def authorize_params(provider: FakeOidcProvider, pkce: Pkce, **overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "scope": "openid email profile",
        "state": STATE,
        "nonce": NONCE,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value != "<omit>"}


async def authorize(
    client: httpx.AsyncClient, provider: FakeOidcProvider, pkce: Pkce, **overrides: str
) -> httpx.Response:
    discovery = (await client.get(f"{provider.base_url}/.well-known/openid-configuration")).json()
    return await client.get(
        discovery["authorization_endpoint"], params=authorize_params(provider, pkce, **overrides)
    )


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == DEFAULT_REDIRECT_URI
    return {name: values[0] for name, values in parse_qs(location.query).items()}


async def code_for(client: httpx.AsyncClient, provider: FakeOidcProvider, pkce: Pkce) -> str:
    answer = redirect_query(await authorize(client, provider, pkce))
    assert answer["state"] == STATE
    return answer["code"]


async def redeem(
    client: httpx.AsyncClient,
    provider: FakeOidcProvider,
    code: str,
    verifier: str,
    *,
    auth_method: str = "client_secret_basic",
    client_secret: str | None = None,
) -> httpx.Response:
    secret = provider.client_secret if client_secret is None else client_secret
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "code_verifier": verifier,
    }
    token_endpoint = f"{provider.base_url}/token"
    if auth_method == "client_secret_basic":
        return await client.post(token_endpoint, data=form, auth=(provider.client_id, secret))
    form |= {"client_id": provider.client_id, "client_secret": secret}
    return await client.post(token_endpoint, data=form)


async def sign_in(client: httpx.AsyncClient, provider: FakeOidcProvider) -> str:
    """The whole code flow; the ID token."""
    pkce = make_pkce()
    response = await redeem(client, provider, await code_for(client, provider, pkce), pkce.verifier)
    assert response.status_code == 200, response.text
    id_token: str = response.json()["id_token"]
    return id_token


async def published_keys(client: httpx.AsyncClient, provider: FakeOidcProvider) -> KeySet:
    discovery = (await client.get(f"{provider.base_url}/.well-known/openid-configuration")).json()
    return KeySet.import_key_set((await client.get(discovery["jwks_uri"])).json())


async def verified(client: httpx.AsyncClient, provider: FakeOidcProvider, id_token: str) -> Token:
    return jwt.decode(id_token, await published_keys(client, provider), algorithms=["RS256"])


def expected_claims(provider: FakeOidcProvider) -> JWTClaimsRegistry:
    return JWTClaimsRegistry(
        iss={"essential": True, "value": provider.base_url},
        aud={"essential": True, "value": provider.client_id},
        nonce={"essential": True, "value": NONCE},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )


async def test_discovery_describes_the_provider(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    response = await client.get(f"{provider.base_url}/.well-known/openid-configuration")

    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == provider.base_url
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        assert document[endpoint].startswith(f"{provider.base_url}/")
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_post",
        "client_secret_basic",
    }


async def test_jwks_publishes_only_the_public_signing_key(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    keys = (await client.get(f"{provider.base_url}/jwks")).json()["keys"]

    assert len(keys) == 1
    assert keys[0]["kty"] == "RSA"
    assert keys[0]["kid"] == provider.signing_key.kid
    assert {"n", "e"} <= keys[0].keys()
    assert not {"d", "p", "q"} & keys[0].keys()


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_code_flow_with_pkce_yields_an_id_token_that_verifies(
    client: httpx.AsyncClient, provider: FakeOidcProvider, auth_method: str
) -> None:
    pkce = make_pkce()
    code = await code_for(client, provider, pkce)

    response = await redeem(client, provider, code, pkce.verifier, auth_method=auth_method)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer = response.json()
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] > 0
    token = await verified(client, provider, answer["id_token"])
    expected_claims(provider).validate(token.claims)
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] == provider.signing_key.kid
    assert token.claims["nonce"] == NONCE
    assert token.claims | OidcUser().claims() == token.claims
    assert token.claims["iat"] <= time.time() < token.claims["exp"]
    userinfo = await client.get(
        f"{provider.base_url}/userinfo",
        headers={"Authorization": f"Bearer {answer['access_token']}"},
    )
    assert userinfo.json() == OidcUser().claims()
    assert provider.authorize_requests[-1].params["nonce"] == NONCE
    assert provider.token_requests[-1].params["code"] == code


async def test_a_code_is_single_use(client: httpx.AsyncClient, provider: FakeOidcProvider) -> None:
    pkce = make_pkce()
    code = await code_for(client, provider, pkce)
    assert (await redeem(client, provider, code, pkce.verifier)).status_code == 200

    replay = await redeem(client, provider, code, pkce.verifier)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


async def test_a_wrong_code_verifier_is_an_invalid_grant(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    code = await code_for(client, provider, make_pkce())

    response = await redeem(client, provider, code, make_pkce().verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_an_unknown_code_is_an_invalid_grant(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    response = await redeem(client, provider, "never-issued", make_pkce().verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_a_wrong_client_secret_is_an_invalid_client(
    client: httpx.AsyncClient, provider: FakeOidcProvider, auth_method: str
) -> None:
    pkce = make_pkce()
    code = await code_for(client, provider, pkce)

    response = await redeem(
        client, provider, code, pkce.verifier, auth_method=auth_method, client_secret="guess"
    )

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_a_token_request_with_another_redirect_uri_is_an_invalid_grant(
    client: httpx.AsyncClient,
) -> None:
    other_uri = "http://127.0.0.1/other/callback"
    with running_fake_oidc(redirect_uris=[DEFAULT_REDIRECT_URI, other_uri]) as provider:
        pkce = make_pkce()
        code = await code_for(client, provider, pkce)
        response = await client.post(
            f"{provider.base_url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": other_uri,
                "code_verifier": pkce.verifier,
            },
            auth=(provider.client_id, provider.client_secret),
        )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://127.0.0.1/evil/callback"},
        {"redirect_uri": "<omit>"},
        {"client_id": "someone-else"},
    ],
)
async def test_authorize_refuses_to_redirect_to_an_unregistered_place(
    client: httpx.AsyncClient, provider: FakeOidcProvider, overrides: dict[str, str]
) -> None:
    response = await authorize(client, provider, make_pkce(), **overrides)

    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"nonce": "<omit>"}, "invalid_request"),
        ({"code_challenge": "<omit>"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "email profile"}, "invalid_scope"),
    ],
)
async def test_authorize_redirects_a_bad_request_back_with_its_error(
    client: httpx.AsyncClient, provider: FakeOidcProvider, overrides: dict[str, str], error: str
) -> None:
    answer = redirect_query(await authorize(client, provider, make_pkce(), **overrides))

    assert answer["error"] == error
    assert answer["state"] == STATE
    assert "code" not in answer


async def test_authorize_without_state_is_an_invalid_request(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    answer = redirect_query(await authorize(client, provider, make_pkce(), state="<omit>"))

    assert answer["error"] == "invalid_request"


async def test_a_forged_signature_fails_against_the_published_keys(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    provider.sign_with_foreign_key = True

    id_token = await sign_in(client, provider)

    keys = await published_keys(client, provider)
    assert jwt.decode(id_token, provider.foreign_key).claims["nonce"] == NONCE
    with pytest.raises(BadSignatureError):
        jwt.decode(id_token, keys, algorithms=["RS256"])


@pytest.mark.parametrize(
    ("options", "claim"),
    [
        ({"audience_override": "another-client"}, "aud"),
        ({"issuer_override": "https://accounts.example.com"}, "iss"),
        ({"nonce_override": "a-replayed-nonce"}, "nonce"),
    ],
)
async def test_a_wrong_claim_knob_fails_claim_validation(
    client: httpx.AsyncClient, provider: FakeOidcProvider, options: dict[str, str], claim: str
) -> None:
    for knob, value in options.items():
        setattr(provider, knob, value)

    token = await verified(client, provider, await sign_in(client, provider))

    assert token.claims[claim] == next(iter(options.values()))
    with pytest.raises(InvalidClaimError, match=claim):
        expected_claims(provider).validate(token.claims)


async def test_a_negative_lifetime_issues_an_expired_token(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    provider.expires_in_seconds = -120

    token = await verified(client, provider, await sign_in(client, provider))

    assert token.claims["iat"] < token.claims["exp"] < time.time()
    with pytest.raises(ExpiredTokenError):
        expected_claims(provider).validate(token.claims)


async def test_omit_nonce_issues_a_token_without_one(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    provider.omit_nonce = True

    token = await verified(client, provider, await sign_in(client, provider))

    assert "nonce" not in token.claims


async def test_an_unverified_email_is_reported_as_such(
    client: httpx.AsyncClient, provider: FakeOidcProvider
) -> None:
    provider.user = OidcUser(email="someone@example.com", email_verified=False)

    token = await verified(client, provider, await sign_in(client, provider))

    assert token.claims["email"] == "someone@example.com"
    assert token.claims["email_verified"] is False
