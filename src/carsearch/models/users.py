from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base, CreatedAt
from carsearch.listings.vocab import AlertFrequency
from carsearch.models.types import vocabulary


class User(CreatedAt, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Stored lower-cased, so uniqueness is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    avatar_url: Mapped[str | None] = mapped_column(Text)
    google_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    last_login_at: Mapped[datetime | None]


class UserFavorite(CreatedAt, Base):
    __tablename__ = "user_favorites"
    __table_args__ = (
        # Alerts look favorites up by listing (a price drop or sale notifies its savers).
        Index("ix_user_favorites_listing_id", "listing_id"),
    )

    # Deleting a user or a listing deletes the favorite, nothing else.
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    listing_id: Mapped[int] = mapped_column(
        ForeignKey("listings.id", ondelete="CASCADE"), primary_key=True
    )
    # The price when saved, so "the price changed by" needs no history lookup.
    saved_price: Mapped[int | None] = mapped_column(Integer)
    # The lowest price a drop was notified at: only a lower one notifies again, so a price
    # that goes up and down around a level does not repeat itself.
    notified_price: Mapped[int | None] = mapped_column(Integer)


class SavedSearch(CreatedAt, Base):
    __tablename__ = "saved_searches"
    __table_args__ = (Index("ix_saved_searches_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    alert_frequency: Mapped[AlertFrequency] = mapped_column(
        vocabulary(AlertFrequency, "alert_frequency"),
        server_default=AlertFrequency.daily.value,
    )
    last_alerted_at: Mapped[datetime | None]
