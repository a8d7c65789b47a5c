"""Our own tokens: short-lived access JWTs, and opaque refresh tokens stored as hashes.

Access tokens are HS256 JWTs signed with a key derived from CARSEARCH_SECRET_KEY (so the
secret itself never signs anything). They carry `type: "access"`, checked on decode, and
the id of their sign-in session, so revoking the session revokes them too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

from carsearch.errors import Unauthorized

ISSUER = "carsearch"
ACCESS = "access"
_ALGORITHM = "HS256"


class InvalidToken(Unauthorized):
    """The token is missing, malformed, expired, of the wrong type or revoked (401, with a
    `WWW-Authenticate` challenge naming the reason)."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason if missing else f"invalid token: {reason}")
        self.reason = reason
        self.missing = missing  # no token was sent at all


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: str
    expires_at: datetime


class TokenIssuer:
    def __init__(self, secret_key: str, access_minutes: int) -> None:
        derived = hmac.new(secret_key.encode(), b"carsearch access tokens", hashlib.sha256)
        self._key = OctKey.import_key(derived.digest())
        self.access_lifetime = timedelta(minutes=access_minutes)
        self._claims = JWTClaimsRegistry(
            leeway=5,
            iss={"essential": True, "value": ISSUER},
            sub={"essential": True},
            sid={"essential": True},
            exp={"essential": True},
            type={"essential": True, "value": ACCESS},
        )

    def access_token(self, user_id: int, session_id: str, now: datetime) -> tuple[str, datetime]:
        expires = now + self.access_lifetime
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session_id,
            "type": ACCESS,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode({"alg": _ALGORITHM}, claims, self._key, algorithms=[_ALGORITHM]), expires

    def decode_access(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALGORITHM])
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(_reason(exc)) from None
        except ValueError:
            raise InvalidToken("malformed token") from None
        claims = decoded.claims
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError):
            raise InvalidToken("malformed token") from None
        return AccessClaims(
            user_id=user_id,
            session_id=str(claims["sid"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )


def _reason(exc: JoseError) -> str:
    name = type(exc).__name__
    if name == "ExpiredTokenError":
        return "token expired"
    if name in {"InvalidClaimError", "MissingClaimError"}:
        return "not an access token"
    if name == "BadSignatureError":
        return "token signature invalid"
    return "malformed token"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a refresh token: enough to find it, useless to steal."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return uuid.uuid4().hex
