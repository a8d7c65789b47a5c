from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base
from carsearch.listings.vocab import DealRating, NoRatingReason
from carsearch.models.types import vocabulary


class ListingAppraisal(Base):
    """A listing's estimated market value and deal rating, as of its last appraisal.

    Kept apart from `listings` so that re-appraising (daily, every listing) does not
    touch listing rows. `updated_at` moves only when what a shopper sees changes (the
    rating, the estimate, the count of comparables); the search sync follows it.
    """

    __tablename__ = "listing_appraisals"
    __table_args__ = (Index("ix_listing_appraisals_updated_at", "updated_at"),)

    listing_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("listings.id", ondelete="CASCADE"), primary_key=True
    )
    rating: Mapped[DealRating] = mapped_column(vocabulary(DealRating, "rating"))
    reason: Mapped[NoRatingReason | None] = mapped_column(vocabulary(NoRatingReason, "reason"))
    estimate: Mapped[int | None] = mapped_column(Integer)
    # The asking price that was appraised: a listing whose price moved since is re-appraised.
    price: Mapped[int | None] = mapped_column(Integer)
    difference: Mapped[int | None] = mapped_column(Integer)
    percent: Mapped[float | None] = mapped_column(Float)
    comparables: Mapped[int] = mapped_column(Integer)
    appraised_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
