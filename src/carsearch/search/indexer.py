"""Keeping the index in step with PostgreSQL: full rebuilds and incremental sync."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from carsearch.search import repository
from carsearch.search.documents import SCHEMA_VERSION, listing_document
from carsearch.search.store import (
    WRITER_HEAP_BYTES,
    IndexMissing,
    IndexOfAnotherDatabase,
    IndexStore,
    SyncState,
    open_index,
)

logger = logging.getLogger(__name__)

# A transaction that commits after a later one was already synced carries an older
# updated_at; re-reading this far back catches it. Re-indexing a row is idempotent.
SYNC_OVERLAP = timedelta(minutes=2)


@dataclass
class SyncMemory:
    """What one follower indexed within the overlap window on its last pass, in which
    generation: rows it reads again unchanged are not indexed again. Without it every pass
    re-indexes every row of the last two minutes (all of a seed, or of a scrape, 24 times)."""

    generation: str | None = None
    indexed: dict[int, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    documents: int
    seconds: float


@dataclass(frozen=True, slots=True)
class SyncReport:
    indexed: int
    position: datetime | None
    lag_seconds: float


def rebuild_index(
    store: IndexStore, dsn: str, on_progress: Callable[[int], None] = lambda _: None
) -> RebuildReport:
    """Build a new generation from every listing, then swap it in.

    Holds the writer lock throughout, so syncs wait; readers keep the old generation
    until the swap.
    """
    started = datetime.now(UTC)
    with store.writer_lock():
        with psycopg.connect(dsn) as conn:
            # Read before the rows: whatever changes during the rebuild is newer than
            # this, so the next sync picks it up.
            position = repository.latest_change(conn)
            database = repository.database_identity(conn)
        generation = store.new_generation()
        try:
            index = open_index(generation, create=True)
            writer = index.writer(WRITER_HEAP_BYTES)
            documents = 0
            for row in repository.stream_all_listings(dsn):
                writer.add_document(listing_document(row))
                documents += 1
                if documents % 5_000 == 0:
                    on_progress(5_000)
            on_progress(documents % 5_000)
            writer.commit()
            writer.wait_merging_threads()
            store.write_sync_state(
                generation,
                SyncState(
                    position=position,
                    synced_at=datetime.now(UTC),
                    documents=documents,
                    schema=SCHEMA_VERSION,
                    database=database,
                ),
            )
        except BaseException:
            shutil.rmtree(generation, ignore_errors=True)
            raise
        store.publish(generation)
    return RebuildReport(documents, (datetime.now(UTC) - started).total_seconds())


def sync_index(store: IndexStore, dsn: str, memory: SyncMemory | None = None) -> SyncReport:
    """Index the listings (and dealers) changed since the last sync.

    With `memory` (a long-lived follower's), rows indexed by its previous pass into the same
    generation and unchanged since are skipped. Raises IndexMissing when there is no index
    yet and WriterBusy during a rebuild.
    """
    with store.writer_lock():
        generation = store.current_generation()
        if generation is None:
            raise IndexMissing
        store.check_schema(generation)
        state = store.read_sync_state(generation)
        since = (
            state.position - SYNC_OVERLAP if state.position else datetime(1970, 1, 1, tzinfo=UTC)
        )
        with psycopg.connect(dsn) as conn:
            if state.database is not None and state.database != repository.database_identity(conn):
                raise IndexOfAnotherDatabase
            if memory is None:
                fresh = repository.listings_changed_since(conn, since)
                changes = [(row.id, row.updated_at) for row in fresh]
            else:
                if memory.generation != str(generation):  # a rebuild: nothing is known of it
                    memory.generation, memory.indexed = str(generation), {}
                # Which rows changed first; whole rows only of those not indexed yet.
                changes = repository.changes_since(conn, since)
                unseen = [i for i, at in changes if memory.indexed.get(i) != at]
                fresh = repository.listings_by_ids(conn, unseen) if unseen else []
            position = max([state.position, *(at for _, at in changes)], key=_sortable)
            if fresh:
                writer = open_index(generation).writer(WRITER_HEAP_BYTES // 4, 1)
                for row in fresh:
                    writer.delete_documents_by_term("id", row.id)
                    writer.add_document(listing_document(row))
                writer.commit()
                writer.wait_merging_threads()
            if memory is not None:
                memory.indexed = dict(changes)
            store.write_sync_state(
                generation,
                SyncState(
                    position=position,
                    synced_at=datetime.now(UTC),
                    documents=state.documents,
                    schema=state.schema,
                    database=state.database,
                ),
            )
            lag = lag_seconds(conn, position)
    if fresh:
        logger.info("search index synced", extra={"indexed": len(fresh), "lag_seconds": lag})
    return SyncReport(indexed=len(fresh), position=position, lag_seconds=lag)


def _sortable(value: datetime | None) -> datetime:
    return value or datetime(1970, 1, 1, tzinfo=UTC)


def lag_seconds(conn: psycopg.Connection, position: datetime | None) -> float:
    """Age of the oldest change not yet searchable (0 when the index is current)."""
    oldest = repository.oldest_change_after(conn, position)
    if oldest is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds())


def current_lag_seconds(store: IndexStore, dsn: str) -> float:
    state = store.read_sync_state()
    with psycopg.connect(dsn) as conn:
        return lag_seconds(conn, state.position)
