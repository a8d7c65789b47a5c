from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Identity, Index, Integer, String, Text
from sqlalchemy import func as sql_func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from carsearch.db.base import Base


class SearchQuery(Base):
    """One search as asked: normalized filters and how it went. No personal data: no user,
    no IP, and a ZIP only to its first three digits."""

    __tablename__ = "search_queries"
    __table_args__ = (Index("ix_search_queries_searched_at", "searched_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    searched_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=sql_func.now()
    )
    endpoint: Mapped[str] = mapped_column(String(16))
    # Lower-cased, whitespace collapsed; null when the search had no words.
    query_text: Mapped[str | None] = mapped_column(Text)
    # Every other filter that was set, lists sorted: equal searches compare equal.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    sort: Mapped[str | None] = mapped_column(String(16))
    page: Mapped[int] = mapped_column(Integer)
    result_count: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    cached: Mapped[bool] = mapped_column(Boolean)
