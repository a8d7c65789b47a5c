"""Background jobs of search: follow the database every few seconds."""

from __future__ import annotations

import asyncio
import logging

from procrastinate import Blueprint, JobContext

from carsearch.config import get_settings
from carsearch.db.engine import libpq_dsn, resolve_database_url
from carsearch.search.indexer import sync_index
from carsearch.search.store import IndexMissing, IndexStore, WriterBusy

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
    except IndexMissing:
        logger.warning("search sync skipped: no index yet (run `carsearch reindex`)")
