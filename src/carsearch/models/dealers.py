from __future__ import annotations

from sqlalchemy import BigInteger, CheckConstraint, Float, Identity, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base, Timestamps


class Dealer(Timestamps, Base):
    __tablename__ = "dealers"
    __table_args__ = (
        Index("ix_dealers_source_source_dealer_id", "source", "source_dealer_id", unique=True),
        Index("ix_dealers_zip", "zip"),
        # The search sync re-indexes the listings of dealers changed since its position.
        Index("ix_dealers_updated_at", "updated_at"),
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
        CheckConstraint("rating BETWEEN 0 AND 5", name="rating_range"),
        CheckConstraint("review_count >= 0", name="review_count_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    source_dealer_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(String(2))
    zip: Mapped[str | None] = mapped_column(String(5))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    phone: Mapped[str | None] = mapped_column(String(32))
    website: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[float | None] = mapped_column(Float)
    review_count: Mapped[int | None]


# Radius search asks `earth_box(ll_to_earth(zip centroid), r) @> ll_to_earth(lat, lon)`,
# which this GiST index answers.
Index(
    "ix_dealers_earth",
    func.ll_to_earth(Dealer.latitude, Dealer.longitude),
    postgresql_using="gist",
)
