"""Background jobs of search: follow the database every few seconds."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import psycopg
from procrastinate import Blueprint, JobContext

from carsearch.config import get_settings
from carsearch.db.engine import libpq_dsn, resolve_database_url
from carsearch.search.indexer import sync_index
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


@search_jobs.periodic(cron="* * * * * */5")
@search_jobs.task(
    queue="search",
    pass_context=True,
    # One sync at a time; a tick that finds one queued adds nothing.
    lock="search-index",
    queueing_lock="search-index-sync",
)
async def sync_search_index(context: JobContext, timestamp: int) -> None:
    """Index the listings changed since the last sync."""
    settings = get_settings()
    dsn = libpq_dsn(resolve_database_url(settings))
    try:
        await asyncio.to_thread(sync_index, IndexStore(settings.index_dir), dsn)
    except WriterBusy:
        logger.info("search sync skipped: a rebuild holds the index writer")
    except IndexOfAnotherDatabase:
        logger.warning("search sync skipped: the index copies another database (reindex)")
    except IndexOutdated:
        logger.warning("search sync skipped: old index schema (run `carsearch reindex`)")
    except IndexMissing:
        logger.warning("search sync skipped: no index yet (run `carsearch reindex`)")


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
