"""Sign-in API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EMAIL_PATTERN = r"^[^@\s\x00]{1,64}@[^@\s\x00]{1,255}\.[^@\s\x00]{2,63}$"


class UserProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="The user's id.", examples=[42])
    email: str = Field(description="Verified e-mail address.", examples=["ann@example.com"])
    name: str | None = Field(description="Display name.", examples=["Ann Lee"])
    avatar_url: str | None = Field(description="Picture from the provider.", examples=[None])
    preferences: dict[str, Any] = Field(
        description="Search preferences: home_zip, radius, favorite_makes, ...",
        examples=[{"home_zip": "10001", "radius": 50, "favorite_makes": ["Toyota"]}],
    )
    created_at: datetime = Field(description="When the account was created.")
    last_login_at: datetime | None = Field(description="Last sign-in.")


class TokenResponse(BaseModel):
    access_token: str = Field(description="Bearer token for the API; short-lived.")
    token_type: str = Field("Bearer", description="Always Bearer.", examples=["Bearer"])
    expires_in: int = Field(description="Seconds the access token is valid.", examples=[900])
    refresh_token: str = Field(description="Exchange at /auth/refresh for a new pair; works once.")
    refresh_expires_in: int = Field(
        description="Seconds the refresh token is valid.", examples=[2592000]
    )
    user: UserProfile = Field(description="Who signed in.")


class DevLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(
        max_length=320,
        pattern=EMAIL_PATTERN,
        description="Sign in as this address (created if new).",
        examples=["dev@example.com"],
    )


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(
        None,
        min_length=10,
        max_length=200,
        description="The refresh token; browsers may send the cookie instead.",
    )


class SignedOut(BaseModel):
    signed_out: bool = Field(description="Whether a session was found and revoked.")
