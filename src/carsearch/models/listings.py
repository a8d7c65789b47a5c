from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base, Timestamps
from carsearch.listings.vin import VIN_PATTERN
from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    Drivetrain,
    FuelType,
    ListingStatus,
    Transmission,
)
from carsearch.models.types import vocabulary

MIN_MODEL_YEAR = 1981  # the first year of 17-character VINs
MAX_MODEL_YEAR = 2100


class Listing(Timestamps, Base):
    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint(f"vin ~ '{VIN_PATTERN}'", name="vin_pattern"),
        CheckConstraint(f"year BETWEEN {MIN_MODEL_YEAR} AND {MAX_MODEL_YEAR}", name="year_range"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("msrp >= 0", name="msrp_not_negative"),
        CheckConstraint("mileage >= 0", name="mileage_not_negative"),
        CheckConstraint(
            "(status = 'sold') = (sold_at IS NOT NULL) OR status = 'removed'",
            name="sold_at_when_sold",
        ),
        # The search sync reads rows changed since its last position.
        Index("ix_listings_updated_at", "updated_at"),
        Index("ix_listings_dealer_id", "dealer_id"),
        Index("ix_listings_source_source_listing_id", "source", "source_listing_id"),
        # Sold detection: active listings not seen for a while.
        Index("ix_listings_status_last_seen_at", "status", "last_seen_at"),
        Index("ix_listings_make_model_year", "make", "model", "year"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(32))
    source_listing_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[ListingStatus] = mapped_column(
        vocabulary(ListingStatus, "status"), server_default=ListingStatus.active.value
    )
    condition: Mapped[Condition] = mapped_column(vocabulary(Condition, "condition"))
    year: Mapped[int] = mapped_column(SmallInteger)
    make: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    trim: Mapped[str | None] = mapped_column(String(128))
    body_style: Mapped[BodyStyle | None] = mapped_column(vocabulary(BodyStyle, "body_style"))
    drivetrain: Mapped[Drivetrain | None] = mapped_column(vocabulary(Drivetrain, "drivetrain"))
    fuel_type: Mapped[FuelType | None] = mapped_column(vocabulary(FuelType, "fuel_type"))
    transmission: Mapped[Transmission | None] = mapped_column(
        vocabulary(Transmission, "transmission")
    )
    engine: Mapped[str | None] = mapped_column(String(128))
    exterior_color: Mapped[Color | None] = mapped_column(vocabulary(Color, "exterior_color"))
    interior_color: Mapped[Color | None] = mapped_column(vocabulary(Color, "interior_color"))
    mileage: Mapped[int | None] = mapped_column(Integer)
    price: Mapped[int | None] = mapped_column(Integer)
    msrp: Mapped[int | None] = mapped_column(Integer)
    # A listing outlives its dealer's record: it keeps its history and sources.
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id", ondelete="SET NULL"))
    images: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    features: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    description: Mapped[str | None] = mapped_column(Text)
    vin_decoded: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sold_at: Mapped[datetime | None]


class ListingSource(Base):
    """Every place a VIN was seen: the same car on two sites stays one listing."""

    __tablename__ = "listing_sources"
    __table_args__ = (
        Index(
            "ix_listing_sources_source_source_listing_id",
            "source",
            "source_listing_id",
            unique=True,
        ),
        Index("ix_listing_sources_listing_id", "listing_id"),
        Index("ix_listing_sources_dealer_id", "dealer_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    source_listing_id: Mapped[str] = mapped_column(String(128))
    url: Mapped[str | None] = mapped_column(Text)
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("dealers.id", ondelete="SET NULL"))
    first_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ListingPriceHistory(Base):
    """One row per price change, the first observation included."""

    __tablename__ = "listing_price_history"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("mileage >= 0", name="mileage_not_negative"),
        Index("ix_listing_price_history_listing_id_observed_at", "listing_id", "observed_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    listing_id: Mapped[int] = mapped_column(ForeignKey("listings.id", ondelete="CASCADE"))
    price: Mapped[int] = mapped_column(Integer)
    mileage: Mapped[int | None] = mapped_column(Integer)
    observed_at: Mapped[datetime] = mapped_column(server_default=func.now())
