"""Background jobs of users: alerts every few minutes, then their delivery."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from procrastinate import Blueprint, JobContext

from carsearch.config import get_settings
from carsearch.db.engine import job_session
from carsearch.search.service import SearchService
from carsearch.search.store import IndexMissing, IndexReader, IndexStore
from carsearch.users.alerts import run_alerts
from carsearch.users.delivery import deliver

logger = logging.getLogger(__name__)

user_jobs = Blueprint()


@user_jobs.periodic(cron="*/5 * * * *")
@user_jobs.task(queue="alerts", lock="alerts", queueing_lock="alerts", pass_context=True)
async def send_alerts(context: JobContext, timestamp: int) -> None:
    """Find what users asked to hear about, write notifications, deliver them."""
    settings = get_settings()
    store = IndexStore(settings.index_dir)
    try:
        position = store.read_sync_state().position
    except IndexMissing:
        logger.warning("alerts skipped: no search index yet (run `carsearch reindex`)")
        return
    async with job_session(settings) as db:
        now = datetime.now(UTC)
        report = await run_alerts(
            db, SearchService(IndexReader(store)), now=now, until=position or now
        )
        await db.commit()
        delivered = await deliver(db, settings)
        await db.commit()
    logger.info(
        "alerts sent",
        extra={
            "notifications": report.notifications,
            "searches": report.searches_checked,
            "delivered": delivered.delivered,
            "failed": delivered.failed,
        },
    )
