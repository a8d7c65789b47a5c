"""Background jobs of chat: anonymous conversations are forgotten after a while."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from procrastinate import Blueprint, JobContext

from carsearch.chat.repository import forget_anonymous_before
from carsearch.config import get_settings
from carsearch.db.engine import job_session

logger = logging.getLogger(__name__)

chat_jobs = Blueprint()


@chat_jobs.periodic(cron="7 * * * *")
@chat_jobs.task(queue="maintenance", pass_context=True)
async def forget_anonymous_conversations(context: JobContext, timestamp: int) -> None:
    """Anonymous conversations untouched for the retention period are deleted."""
    settings = get_settings()
    before = datetime.now(UTC) - timedelta(hours=settings.chat_anonymous_retention_hours)
    async with job_session(settings) as db:
        deleted = await forget_anonymous_before(db, before)
        await db.commit()
    logger.info("anonymous conversations forgotten", extra={"deleted": deleted})
