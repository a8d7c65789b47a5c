"""Background jobs of appraisal: the whole market daily, changed prices every few minutes."""

from __future__ import annotations

import asyncio
import logging

from procrastinate import Blueprint, JobContext

from carsearch.appraisal.service import AppraisalReport, appraise_market, appraise_stale
from carsearch.config import get_settings
from carsearch.db.engine import libpq_dsn, resolve_database_url

logger = logging.getLogger(__name__)

appraisal_jobs = Blueprint()


def _log(what: str, report: AppraisalReport) -> None:
    logger.info(
        what,
        extra={
            "listings": report.listings,
            "models": report.models,
            "changed": report.changed,
            "ratings": dict(report.ratings),
            "seconds": round(report.seconds, 2),
        },
    )


@appraisal_jobs.periodic(cron="30 4 * * *")
@appraisal_jobs.task(queue="appraisal", pass_context=True, lock="appraisal")
async def appraise_all_listings(context: JobContext, timestamp: int) -> None:
    """Re-appraise every active listing: the market moves even where prices do not."""
    dsn = libpq_dsn(resolve_database_url(get_settings()))
    _log("market appraised", await asyncio.to_thread(appraise_market, dsn))


@appraisal_jobs.periodic(cron="*/10 * * * *")
@appraisal_jobs.task(
    queue="appraisal",
    pass_context=True,
    lock="appraisal",
    queueing_lock="appraisal-changed",
)
async def appraise_changed_listings(context: JobContext, timestamp: int) -> None:
    """Re-appraise the models where a price changed or a listing arrived since."""
    dsn = libpq_dsn(resolve_database_url(get_settings()))
    report = await asyncio.to_thread(appraise_stale, dsn)
    if report.listings:
        _log("changed prices appraised", report)
