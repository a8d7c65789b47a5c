"""Search analytics: every search is recorded, off the request path.

A search appends an event to an in-memory buffer and returns; a background task writes
the buffer to `search_queries` in batches. A full buffer or a failed write drops events
(and counts them) rather than slow or fail a search.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from carsearch.search.repository import insert_search_queries
from carsearch.search.schemas import SearchFilters, SearchParams

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SearchEvent:
    endpoint: str
    query_text: str | None
    filters: dict[str, Any]
    sort: str | None
    page: int
    result_count: int
    latency_ms: float
    cached: bool
    searched_at: datetime

    @classmethod
    def of(
        cls,
        endpoint: str,
        filters: SearchFilters,
        *,
        result_count: int,
        latency_ms: float,
        cached: bool,
    ) -> SearchEvent:
        normalized = filters.normalized()
        query_text = normalized.pop("q", None)
        for paging in ("sort", "page", "page_size", "facets"):
            normalized.pop(paging, None)
        if "zip" in normalized:
            # Three digits name an area, not a household.
            normalized["zip"] = normalized["zip"][:3] + "xx"
        paged = filters if isinstance(filters, SearchParams) else None
        return cls(
            endpoint=endpoint,
            query_text=query_text,
            filters=normalized,
            sort=paged.sort.value if paged is not None else None,
            page=paged.page if paged is not None else 1,
            result_count=result_count,
            latency_ms=round(latency_ms, 3),
            cached=cached,
            searched_at=datetime.now(UTC),
        )

    def row(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "query_text": self.query_text,
            "filters": self.filters,
            "sort": self.sort,
            "page": self.page,
            "result_count": self.result_count,
            "latency_ms": self.latency_ms,
            "cached": self.cached,
            "searched_at": self.searched_at,
        }


class SearchLog:
    """A bounded buffer of search events and the task that writes them."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        interval_seconds: float = 1.0,
    ) -> None:
        self.engine = engine
        self.capacity = capacity
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds
        self.written = 0
        self.dropped = 0
        self._buffer: list[SearchEvent] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def record(self, event: SearchEvent) -> None:
        """Never blocks, never raises: a full buffer drops the event."""
        if len(self._buffer) >= self.capacity:
            self.dropped += 1
            return
        self._buffer.append(event)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def flush(self) -> int:
        """Write what is buffered; returns the number of events written."""
        written = 0
        while self._buffer:
            batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size :]
            try:
                await insert_search_queries(self.engine, [event.row() for event in batch])
            except Exception as exc:  # the database is down or refused: lose stats, not searches
                self.dropped += len(batch)
                logger.warning("search analytics: %d events dropped: %s", len(batch), exc)
                continue
            written += len(batch)
        self.written += written
        return written

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)
            self._wake.clear()
            await self.flush()

    def start(self) -> None:
        self._stopping = False
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="search-analytics")

    async def stop(self) -> None:
        """Let the task finish its write, then write what is left."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
