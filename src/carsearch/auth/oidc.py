"""OpenID Connect sign-in (Google, or any provider with a discovery document).

The authorization request carries state, nonce and a PKCE S256 challenge (built with
Authlib's OAuth 2 helpers); the code comes back to the callback and is exchanged at the
token endpoint; the ID token is verified here: signature against the issuer's JWKS (keys
re-fetched once when an unknown key id appears, as providers rotate them), `iss`, `aud`,
`exp`, the nonce, and a verified e-mail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from carsearch.errors import CarSearchError, Forbidden, ServiceUnavailable, Unauthorized

DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_SECONDS = 3600


class SignInRefused(CarSearchError):
    """The provider refused the sign-in (a used or expired code, a denied consent)."""

    status_code = 400
    code = "sign_in_failed"


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str
    name: str | None
    picture: str | None


class OidcClient:
    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: str = "openid email profile",
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.scopes = scopes
        self._http = http or httpx.AsyncClient(timeout=10)
        self._metadata: tuple[float, ProviderMetadata] | None = None
        self._keys: KeySet | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceUnavailable(f"the sign-in provider is unavailable ({exc})") from None
        if not isinstance(document, dict):
            raise ServiceUnavailable("the sign-in provider answered something unexpected")
        return document

    async def metadata(self) -> ProviderMetadata:
        if self._metadata is not None and self._metadata[0] > time.monotonic():
            return self._metadata[1]
        document = await self._get_json(self.issuer + DISCOVERY_PATH)
        try:
            metadata = ProviderMetadata(
                issuer=str(document["issuer"]).rstrip("/"),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
            )
        except KeyError as missing:
            raise ServiceUnavailable(f"the provider's discovery lacks {missing}") from None
        if metadata.issuer != self.issuer:
            raise ServiceUnavailable(
                f"the provider calls itself {metadata.issuer}, not {self.issuer}"
            )
        self._metadata = (time.monotonic() + METADATA_SECONDS, metadata)
        return metadata

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        metadata = await self.metadata()
        return str(
            prepare_grant_uri(
                metadata.authorization_endpoint,
                client_id=self.client_id,
                response_type="code",
                redirect_uri=self.redirect_uri,
                scope=self.scopes,
                state=state,
                nonce=nonce,
                code_challenge=create_s256_code_challenge(code_verifier),
                code_challenge_method="S256",
            )
        )

    async def sign_in(self, *, code: str, code_verifier: str, nonce: str) -> Identity:
        """Exchange the code and verify the ID token that comes back."""
        metadata = await self.metadata()
        try:
            response = await self._http.post(
                metadata.token_endpoint,
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": code_verifier,
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                },
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the sign-in provider is unavailable ({exc})") from None
        if response.status_code >= 500:
            raise ServiceUnavailable(f"the sign-in provider failed (HTTP {response.status_code})")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            error = error or f"HTTP {response.status_code}"
            raise SignInRefused(f"the provider refused the sign-in code: {error}")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("the provider sent no ID token")
        return await self.verify_id_token(id_token, nonce=nonce)

    async def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            try:
                document = await self._get_json(metadata.jwks_uri)
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as exc:
                raise ServiceUnavailable(f"the provider's keys are unreadable ({exc})") from None
        return self._keys

    async def verify_id_token(self, id_token: str, *, nonce: str) -> Identity:
        keys = await self._key_set()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=["RS256"])
            except JoseError as first:
                if type(first).__name__ not in {"InvalidKeyIdError", "MissingKeyError"}:
                    raise
                # A key id we do not know: the provider rotated its keys.
                fresh = await self._key_set(refresh=True)
                token = jwt.decode(id_token, fresh, algorithms=["RS256"])
        except JoseError as exc:
            raise Unauthorized(f"the ID token's signature does not verify ({_name(exc)})") from None
        except ValueError:
            raise Unauthorized("the ID token is malformed") from None
        claims = token.claims
        registry = JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise Unauthorized(f"the ID token is not valid for us ({_name(exc)})") from None
        if claims.get("nonce") != nonce:
            raise Unauthorized("the ID token's nonce does not match this sign-in")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise Forbidden("the provider did not share an e-mail address")
        if claims.get("email_verified") not in (True, "true"):
            raise Forbidden("the e-mail address is not verified with the provider")
        return Identity(
            subject=str(claims["sub"]),
            email=email.strip().lower(),
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            picture=claims.get("picture") if isinstance(claims.get("picture"), str) else None,
        )


def _name(exc: JoseError) -> str:
    return getattr(exc, "description", None) or type(exc).__name__
