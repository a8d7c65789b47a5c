from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Identity, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base, Timestamps
from carsearch.listings.vocab import RunStatus, SourceStatus
from carsearch.models.types import vocabulary


class ScrapeRun(Base):
    """Everything one run of one source did, written as it goes and closed at the end."""

    __tablename__ = "scrape_runs"
    __table_args__ = (Index("ix_scrape_runs_source_started_at", "source", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule, manual
    status: Mapped[RunStatus] = mapped_column(vocabulary(RunStatus, "status"))
    started_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    finished_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    # What was asked: zip, radius, max_pages, base_url.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'"))
    robots_respected: Mapped[bool] = mapped_column(Boolean)
    pages_fetched: Mapped[int] = mapped_column(Integer, server_default="0")
    listings_parsed: Mapped[int] = mapped_column(Integer, server_default="0")
    listings_new: Mapped[int] = mapped_column(Integer, server_default="0")
    listings_updated: Mapped[int] = mapped_column(Integer, server_default="0")
    listings_unchanged: Mapped[int] = mapped_column(Integer, server_default="0")
    price_changes: Mapped[int] = mapped_column(Integer, server_default="0")
    sold: Mapped[int] = mapped_column(Integer, server_default="0")
    errors: Mapped[int] = mapped_column(Integer, server_default="0")
    # Records skipped, by reason ("invalid_vin": 2, "implausible_price": 1).
    skipped: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'"))
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class SourceState(Timestamps, Base):
    """Per source: whether it is blocked, and until when it is left alone."""

    __tablename__ = "source_states"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[SourceStatus] = mapped_column(
        vocabulary(SourceStatus, "status"), server_default=SourceStatus.ok.value
    )
    blocked_until: Mapped[datetime | None]
    consecutive_blocks: Mapped[int] = mapped_column(Integer, server_default="0")
    last_blocked_reason: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None]


class VinDecode(Base):
    """A decoded VIN, so that vPIC is asked once per VIN. Offline decodes are kept until an
    online decode replaces them."""

    __tablename__ = "vin_decodes"
    __table_args__ = (
        Index("ix_vin_decodes_offline", "decoded_at", postgresql_where=text("source = 'offline'")),
    )

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # vpic or offline
    decoded: Mapped[dict[str, Any]] = mapped_column(JSONB)
    decoded_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
