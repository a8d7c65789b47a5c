"""Background work of search: follow the database every few seconds, purge old searches."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import psycopg
from procrastinate import Blueprint, JobContext

from carsearch.config import get_settings
from carsearch.db.engine import libpq_dsn, resolve_database_url
from carsearch.search.indexer import SyncMemory, sync_index
from carsearch.search.repository import delete_search_queries_before
from carsearch.search.store import (
    IndexMissing,
    IndexOfAnotherDatabase,
    IndexOutdated,
    IndexStore,
    WriterBusy,
)

logger = logging.getLogger(__name__)

search_jobs = Blueprint()


SYNC_INTERVAL_SECONDS = 5.0


def sync_once(store: IndexStore, dsn: str, memory: SyncMemory | None = None) -> str | None:
    """One sync of this machine's index; returns why it was skipped, if it was."""
    try:
        sync_index(store, dsn, memory)
    except WriterBusy:
        return "a rebuild holds the index writer"
    except IndexOfAnotherDatabase:
        return "the index copies another database (run `carsearch reindex`)"
    except IndexOutdated:
        return "old index schema (run `carsearch reindex`)"
    except IndexMissing:
        return "no index yet (run `carsearch reindex`)"
    return None


async def follow_database(
    store: IndexStore, dsn: str, interval: float = SYNC_INTERVAL_SECONDS
) -> None:
    """Keep this machine's index current, every `interval` seconds, until cancelled.

    Every job worker runs this beside its jobs: each machine has its own index on local
    disk, and a queued job would sync only the copy of whichever machine took it. A reason
    to skip is logged when it starts and when it ends, not on every tick.
    """
    skipped: str | None = None
    memory = SyncMemory()
    while True:
        failure: Exception | None = None
        try:
            reason = await asyncio.to_thread(sync_once, store, dsn, memory)
        except Exception as exc:  # the loop outlives any one failure: it is all that syncs
            failure = exc
            lines = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {lines[0][:200] if lines else ''}"
        if reason != skipped:
            if reason is None:
                logger.info("search sync resumed")
            else:
                logger.warning("search sync skipped: %s", reason, exc_info=failure)
            skipped = reason
        await asyncio.sleep(interval)


@search_jobs.task(
    queue="search",
    pass_context=True,
    # One sync at a time; a request that finds one queued adds nothing.
    lock="search-index",
    queueing_lock="search-index-sync",
)
async def sync_search_index(context: JobContext, timestamp: int | None = None) -> None:
    """Index the listings changed since the last sync, now (the scraper asks for one after
    each run, so new listings are searchable on that machine at once; every worker also
    follows the database on its own, see `follow_database`)."""
    settings = get_settings()
    dsn = libpq_dsn(resolve_database_url(settings))
    reason = await asyncio.to_thread(sync_once, IndexStore(settings.index_dir), dsn)
    if reason is not None:
        logger.info("search sync skipped: %s", reason)


@search_jobs.periodic(cron="41 3 * * *")
@search_jobs.task(queue="maintenance", pass_context=True)
async def purge_search_queries(context: JobContext, timestamp: int) -> None:
    """Forget recorded searches older than the retention period."""
    settings = get_settings()
    before = datetime.now(UTC) - timedelta(days=settings.search_analytics_retention_days)
    dsn = libpq_dsn(resolve_database_url(settings))

    def purge() -> int:
        with psycopg.connect(dsn) as conn:
            return delete_search_queries_before(conn, before)

    deleted = await asyncio.to_thread(purge)
    logger.info("search analytics purged", extra={"deleted": deleted})
