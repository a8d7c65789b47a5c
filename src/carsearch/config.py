"""Every CarSearch setting, in one place.

Environment variables use the `CARSEARCH_` prefix, except the conventional `DATABASE_URL`
and `REDIS_URL`. A `.env` file in the working directory is read too.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRET = "change-me-in-production"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARSEARCH_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    env: Environment = Environment.development
    secret_key: str = PLACEHOLDER_SECRET

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CARSEARCH_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CARSEARCH_REDIS_URL")
    )
    var_dir: Path = Path("var")
    # None means <var_dir>/pg
    embedded_pg_dir: Path | None = None
    embedded_db_name: str = "carsearch"
    # None means <var_dir>/index
    search_index_dir: Path | None = None
    # Where the API processes and the job worker share their metrics (multiprocess mode of
    # prometheus-client); the commands that start them set it up. None means <var_dir>/metrics
    metrics_dir: Path | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_connect_timeout: int = Field(default=5, ge=1, le=120)
    # Checking each connection before use costs a round trip per request; without it, a
    # connection the server dropped fails one request with a 503, then is replaced.
    db_pool_pre_ping: bool = False
    db_pool_recycle_seconds: int = Field(default=1800, ge=60, le=86_400)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:3000"]
    log_level: str = "info"

    seed_listings: int = Field(default=10_000, ge=0)

    # Cached search responses: 0 seconds turns the cache off.
    search_cache_ttl_seconds: float = Field(default=60, ge=0, le=86_400)
    search_cache_max_entries: int = Field(default=4_096, ge=1, le=1_000_000)
    # Record every search in search_queries (`carsearch stats searches` reads it).
    search_analytics: bool = True
    search_analytics_retention_days: int = Field(default=90, ge=1, le=3650)

    # Ingestion. Scrapers name themselves and say where to read about them.
    scraper_user_agent: str = "CarSearchBot/0.1"
    scraper_contact_url: str = "https://carsearch.example/bot"
    # Active listings a source has not shown for this many days are marked sold.
    sold_after_days: int = Field(default=3, ge=1, le=365)
    # cars.com. Off by default: the schedule leaves it alone until an operator enables it.
    carscom_enabled: bool = False
    carscom_base_url: str = "https://www.cars.com"
    # robots.txt is honoured unless an operator holding the site's permission turns it off.
    carscom_respect_robots: bool = True
    carscom_cron: str = "0 */4 * * *"
    carscom_zip: str = Field(default="10001", pattern=r"^\d{5}$")
    carscom_radius: int = Field(default=50, ge=1, le=500)
    carscom_max_pages: int = Field(default=5, ge=1, le=200)
    carscom_min_interval_seconds: float = Field(default=2.0, ge=0, le=600)
    carscom_concurrency: int = Field(default=2, ge=1, le=16)
    # NHTSA vPIC; when unreachable, VINs are decoded offline and retried later.
    vpic_enabled: bool = True
    vpic_base_url: str = "https://vpic.nhtsa.dot.gov/api/"

    # Sign-in: any OpenID Connect provider; Google by default.
    oidc_issuer: str = "https://accounts.google.com"
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    # Where the provider sends the browser back; default: this API's callback URL.
    oidc_redirect_uri: str | None = None
    oidc_scopes: str = "openid email profile"
    # POST /api/v1/auth/dev-login (email in, tokens out): development only.
    auth_dev_login: bool = False
    access_token_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    # Browser cookies carrying the tokens: HttpOnly always; Secure unless turned off for
    # plain-http development.
    auth_cookie_secure: bool = True
    auth_cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    # Requests per period, per user (or per IP when anonymous), by route group.
    rate_limits: str = "search=120/60,auth=20/60,user=120/60,chat=20/60,default=300/60"
    rate_limit_enabled: bool = True
    # Alerts are delivered by webhook and/or e-mail when these are set.
    alert_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "CarSearch <alerts@carsearch.example>"

    # The assistant: "local" needs no network and no model; "anthropic" and "openai" use
    # the vendors' SDKs (a base URL lets an OpenAI-compatible local server answer).
    chat_provider: Literal["local", "anthropic", "openai"] = "local"
    chat_api_key: str | None = None
    chat_model: str | None = None  # default: claude-sonnet-4-5 or gpt-4o-mini
    chat_base_url: str | None = None
    chat_timeout_seconds: float = Field(default=30, gt=0, le=300)
    # Anonymous conversations are forgotten this long after their last message.
    chat_anonymous_retention_hours: int = Field(default=72, ge=1, le=24 * 365)

    @property
    def oidc_redirect(self) -> str:
        return self.oidc_redirect_uri or (
            f"http://{self.host}:{self.port}/api/v1/auth/google/callback"
        )

    @property
    def scraper_identity(self) -> str:
        """The User-Agent scrapers send: product token plus a contact URL."""
        return f"{self.scraper_user_agent} (+{self.scraper_contact_url})"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("rate_limits")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        from carsearch.ratelimit import parse_rules

        parse_rules(value)  # raises ValueError naming what is wrong
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        return value

    @model_validator(mode="after")
    def _chat_provider_needs_a_key(self) -> Settings:
        if self.chat_provider != "local" and not self.chat_api_key:
            raise ValueError(
                f"CARSEARCH_CHAT_PROVIDER={self.chat_provider} needs CARSEARCH_CHAT_API_KEY"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_login_in_production(self) -> Settings:
        if self.env is Environment.production and self.auth_dev_login:
            raise ValueError("CARSEARCH_AUTH_DEV_LOGIN must not be set in production")
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secret_in_production(self) -> Settings:
        if self.env is Environment.production and (
            self.secret_key == PLACEHOLDER_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "CARSEARCH_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production"
            )
        return self

    @property
    def pg_dir(self) -> Path:
        return self.embedded_pg_dir or self.var_dir / "pg"

    @property
    def index_dir(self) -> Path:
        return self.search_index_dir or self.var_dir / "index"

    @property
    def metrics_multiprocess_dir(self) -> Path:
        return self.metrics_dir or self.var_dir / "metrics"

    @property
    def uses_embedded_db(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
