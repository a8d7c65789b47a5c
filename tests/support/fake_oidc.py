"""A local OpenID Connect provider: discovery, JWKS, authorization code flow with PKCE.

It speaks the real protocol over a real socket, so the sign-in code under test runs as it
would against Google. There is no login page: /authorize approves at once as `user`.
The knobs on `FakeOidcProvider` make it misbehave the ways a client has to survive, and
may be changed while it runs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from loopback import serving
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

DEFAULT_CLIENT_ID = "carsearch-test-client"
DEFAULT_CLIENT_SECRET = "carsearch-test-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/auth/callback"
SIGNING_KEY_ID = "fake-oidc-key-1"
CODE_LIFETIME_SECONDS = 60
DEFAULT_EXPIRES_IN_SECONDS = 3600
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class OidcUser:
    """The signed-in user: the claims the ID token and /userinfo carry."""

    sub: str = "fake-oidc-user-1"
    email: str = "driver@example.com"
    email_verified: bool = True
    name: str = "Dana Driver"
    picture: str = "https://example.com/dana.png"

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.sub,
            "email": self.email,
            "email_verified": self.email_verified,
            "name": self.name,
            "picture": self.picture,
        }


@dataclass
class RecordedRequest:
    """One request to /authorize (query parameters) or /token (form fields)."""

    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class AuthorizationGrant:
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    user: OidcUser
    expires_at: float


class OidcError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class FakeOidcProvider:
    """Configuration, misbehaviour knobs and request log of the fake provider."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: list[str] = field(default_factory=lambda: [DEFAULT_REDIRECT_URI])
    user: OidcUser = field(default_factory=OidcUser)
    # Knobs: each one makes the issued ID tokens wrong in one way.
    sign_with_foreign_key: bool = False
    audience_override: str | None = None
    issuer_override: str | None = None
    expires_in_seconds: int = DEFAULT_EXPIRES_IN_SECONDS
    omit_nonce: bool = False
    nonce_override: str | None = None
    # Set by running_fake_oidc: the issuer.
    base_url: str = ""
    signing_key: RSAKey = field(init=False, repr=False)
    authorize_requests: list[RecordedRequest] = field(init=False, default_factory=list)
    token_requests: list[RecordedRequest] = field(init=False, default_factory=list)
    userinfo_requests: list[RecordedRequest] = field(init=False, default_factory=list)
    grants: dict[str, AuthorizationGrant] = field(init=False, default_factory=dict, repr=False)
    access_tokens: dict[str, OidcUser] = field(init=False, default_factory=dict, repr=False)
    _foreign_key: RSAKey | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.signing_key = RSAKey.generate_key(2048, {"kid": SIGNING_KEY_ID, "use": "sig"})

    def reset(self) -> None:
        """Back to a well-behaved provider with the default user and an empty log."""
        self.user = OidcUser()
        self.sign_with_foreign_key = False
        self.audience_override = None
        self.issuer_override = None
        self.expires_in_seconds = DEFAULT_EXPIRES_IN_SECONDS
        self.omit_nonce = False
        self.nonce_override = None
        self.authorize_requests.clear()
        self.token_requests.clear()
        self.userinfo_requests.clear()
        self.grants.clear()
        self.access_tokens.clear()

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def foreign_key(self) -> RSAKey:
        """A key outside the JWKS that claims the published key's kid: a forger's key."""
        if self._foreign_key is None:
            self._foreign_key = RSAKey.generate_key(2048, {"kid": SIGNING_KEY_ID, "use": "sig"})
        return self._foreign_key

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.signing_key]).as_dict(private=False))

    def discovery_document(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["iss", "aud", "sub", "iat", "exp", "nonce", "at_hash",
                                 "email", "email_verified", "name", "picture"],
        }  # fmt: skip

    def issue_id_token(
        self, *, nonce: str, access_token: str | None = None, user: OidcUser | None = None
    ) -> str:
        """An ID token for `user` (default: the provider's), shaped by the knobs."""
        now = int(time.time())
        expires_at = now + self.expires_in_seconds
        # An expired token reads as one issued earlier, not one that expired before issue.
        issued_at = min(now, expires_at - 60)
        claims: dict[str, Any] = {
            "iss": self.issuer_override if self.issuer_override is not None else self.issuer,
            "aud": self.audience_override if self.audience_override is not None else self.client_id,
            **(user or self.user).claims(),
            "iat": issued_at,
            "exp": expires_at,
        }
        if not self.omit_nonce:
            claims["nonce"] = self.nonce_override if self.nonce_override is not None else nonce
        if access_token is not None:
            claims["at_hash"] = left_half_hash(access_token)
        key = self.foreign_key if self.sign_with_foreign_key else self.signing_key
        return jwt.encode({"alg": "RS256", "kid": SIGNING_KEY_ID}, claims, key)

    def start_authorization(self, params: dict[str, str]) -> str:
        """Approve a valid /authorize request as `user`; the code to send back."""
        for name in ("state", "nonce", "code_challenge"):
            if not params.get(name):
                raise OidcError("invalid_request", f"{name} is required")
        if params.get("response_type") != "code":
            raise OidcError("unsupported_response_type", "only response_type=code is supported")
        if "openid" not in params.get("scope", "").split():
            raise OidcError("invalid_scope", "scope must contain openid")
        if params.get("code_challenge_method") != "S256":
            raise OidcError("invalid_request", "code_challenge_method must be S256")
        code = secrets.token_urlsafe(24)
        self.grants[code] = AuthorizationGrant(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            nonce=params["nonce"],
            code_challenge=params["code_challenge"],
            user=OidcUser(**self.user.claims()),
            expires_at=time.monotonic() + CODE_LIFETIME_SECONDS,
        )
        return code

    def exchange_code(self, params: dict[str, str], authorization: str | None) -> dict[str, Any]:
        """Redeem an authorization code: the token response, or an OidcError."""
        self.authenticate_client(params, authorization)
        if params.get("grant_type") != "authorization_code":
            raise OidcError("unsupported_grant_type", "only authorization_code is supported")
        # A code is spent when presented, whether or not the exchange succeeds.
        grant = self.grants.pop(params.get("code", ""), None)
        if grant is None or grant.expires_at < time.monotonic():
            raise OidcError("invalid_grant", "unknown, used or expired code")
        if grant.client_id != self.client_id:
            raise OidcError("invalid_grant", "the code was issued to another client")
        if params.get("redirect_uri") != grant.redirect_uri:
            raise OidcError("invalid_grant", "redirect_uri differs from the authorize request")
        verifier = params.get("code_verifier", "")
        if not hmac.compare_digest(s256_challenge(verifier), grant.code_challenge):
            raise OidcError("invalid_grant", "code_verifier does not match code_challenge")
        access_token = secrets.token_urlsafe(32)
        self.access_tokens[access_token] = grant.user
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in_seconds,
            "scope": "openid email profile",
            "id_token": self.issue_id_token(
                nonce=grant.nonce, access_token=access_token, user=grant.user
            ),
        }

    def authenticate_client(self, params: dict[str, str], authorization: str | None) -> None:
        if authorization is not None and "client_secret" in params:
            raise OidcError("invalid_request", "use one client authentication method, not two")
        if authorization is not None:
            client_id, client_secret = basic_credentials(authorization)
        else:
            client_id, client_secret = params.get("client_id"), params.get("client_secret")
        if client_id is None or client_secret is None:
            raise OidcError("invalid_client", "client authentication is required", 401)
        if "client_id" in params and params["client_id"] != client_id:
            raise OidcError("invalid_client", "client_id differs from the credentials", 401)
        if not (
            hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            raise OidcError("invalid_client", "unknown client or wrong secret", 401)


def s256_challenge(verifier: str) -> str:
    return base64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())


def left_half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64url(digest[: len(digest) // 2])


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def basic_credentials(authorization: str) -> tuple[str | None, str | None]:
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        return None, None
    client_id, colon, client_secret = decoded.partition(":")
    if not colon:
        return None, None
    # RFC 6749 2.3.1: both halves are form-urlencoded before the base64.
    return unquote_plus(client_id), unquote_plus(client_secret)


def single_valued(encoded: str) -> dict[str, str]:
    """Parse query or form parameters; OAuth forbids sending one twice."""
    parsed = parse_qs(encoded, keep_blank_values=True)
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise OidcError("invalid_request", f"repeated parameter: {', '.join(repeated)}")
    return {name: values[0] for name, values in parsed.items()}


def error_redirect(redirect_uri: str, error: OidcError, state: str | None) -> RedirectResponse:
    answer = {"error": error.error, "error_description": error.description}
    if state:
        answer["state"] = state
    return RedirectResponse(with_query(redirect_uri, answer), status_code=302)


def with_query(url: str, params: dict[str, str]) -> str:
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{urlencode(params)}"


def error_json(error: OidcError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="fake-oidc"'
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers=headers,
    )


def create_fake_oidc_app(provider: FakeOidcProvider) -> Starlette:
    async def discovery(request: Request) -> Response:
        return JSONResponse(provider.discovery_document())

    async def jwks(request: Request) -> Response:
        return JSONResponse(provider.jwks())

    async def authorize(request: Request) -> Response:
        provider.authorize_requests.append(
            RecordedRequest(dict(request.query_params), dict(request.headers))
        )
        try:
            params = single_valued(request.url.query)
        except OidcError as error:
            return PlainTextResponse(error.description, status_code=400)
        # Without a known client and redirect_uri, there is nowhere safe to send an error.
        if params.get("client_id") != provider.client_id:
            return PlainTextResponse("unknown client_id", status_code=400)
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in provider.redirect_uris:
            return PlainTextResponse("redirect_uri is not registered", status_code=400)
        state = params.get("state")
        try:
            code = provider.start_authorization(params)
        except OidcError as error:
            return error_redirect(redirect_uri, error, state)
        return RedirectResponse(
            with_query(redirect_uri, {"code": code, "state": state or ""}), status_code=302
        )

    async def token(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        authorization = request.headers.get("authorization")
        provider.token_requests.append(
            RecordedRequest(
                {name: values[-1] for name, values in parse_qs(body).items()},
                dict(request.headers),
            )
        )
        content_type = request.headers.get("content-type", "")
        try:
            if not content_type.startswith("application/x-www-form-urlencoded"):
                raise OidcError("invalid_request", "send a form-urlencoded body")
            params = single_valued(body)
            answer = provider.exchange_code(params, authorization)
        except OidcError as error:
            return error_json(error)
        return JSONResponse(answer, headers=NO_STORE)

    async def userinfo(request: Request) -> Response:
        provider.userinfo_requests.append(RecordedRequest({}, dict(request.headers)))
        scheme, _, access_token = request.headers.get("authorization", "").partition(" ")
        user = provider.access_tokens.get(access_token) if scheme.lower() == "bearer" else None
        if user is None:
            return Response(
                status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        return JSONResponse(user.claims())

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo, methods=["GET", "POST"]),
        ]
    )


@contextmanager
def running_fake_oidc(**options: Any) -> Iterator[FakeOidcProvider]:
    """A fake provider on a free loopback port; `base_url` is its issuer.

    `options` are FakeOidcProvider fields (client_id, redirect_uris, user, knobs...).
    """
    provider = FakeOidcProvider(**options)
    with serving(create_fake_oidc_app(provider)) as base_url:
        provider.base_url = base_url
        yield provider
