"""Background jobs of ingestion: the scheduled run per source, detail pages, VIN re-decoding.

The schedule is registered by `register_schedules` from settings (cron per source); a run
is a job on the `scrape` queue with one lock per source, so two runs of one source never
overlap. Its new listings' detail pages are fanned out as jobs of DETAIL_BATCH listings,
run one at a time under the same lock, so the site sees one polite client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import psycopg
from procrastinate import App, Blueprint, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued

from carsearch.config import get_settings
from carsearch.db.engine import libpq_dsn, resolve_database_url
from carsearch.ingest.fetch import PoliteFetcher
from carsearch.ingest.pipeline import RunCounts
from carsearch.ingest.service import (
    SOURCE,
    CarsComRun,
    DecoderScope,
    RunStopped,
    ScrapeRequest,
    SourceBlocked,
    count_refusal,
    fetch_detail,
    fetch_policy,
    ingest_connection,
    load_catalog,
)
from carsearch.ingest.vin_cache import CachedVinDecoder
from carsearch.ingest.vin_decode import VinDecoder
from carsearch.ingest.vpic import VpicClient
from carsearch.listings.vocab import RunStatus
from carsearch.observability.jobs import defer_job

logger = logging.getLogger(__name__)

ingest_jobs = Blueprint()
DETAIL_BATCH = 25
_RETRY = RetryStrategy(max_attempts=3, exponential_wait=60)


@ingest_jobs.task(
    queue="scrape",
    name="scrape_carscom",
    lock=f"scrape-{SOURCE}",
    queueing_lock=f"scrape-{SOURCE}",
    retry=_RETRY,
    pass_context=True,
)
async def scrape_carscom(context: JobContext, timestamp: int | None = None) -> None:
    """One run with the settings' area; the schedule defers it (cron from settings)."""
    settings = get_settings()
    if timestamp is not None and not settings.carscom_enabled:
        logger.info("cars.com is not enabled (CARSEARCH_CARSCOM_ENABLED): scheduled run skipped")
        return
    dsn = libpq_dsn(resolve_database_url(settings))
    request = ScrapeRequest.from_settings(settings, trigger="schedule", fetch_details=False)
    try:
        report = await CarsComRun(settings, dsn, request).execute()
    except SourceBlocked as blocked:
        logger.warning("scheduled run skipped: %s", blocked)
        return
    if report.status is RunStatus.failed:
        # procrastinate retries the job; the failed run is already recorded.
        raise RuntimeError(f"scrape run {report.run_id} failed: {report.error}")
    ids = [item.source_listing_id for item in report.new_listings]
    for start in range(0, len(ids), DETAIL_BATCH):
        await defer_job(
            scrape_carscom_details,
            listing_ids=ids[start : start + DETAIL_BATCH],
            run_id=report.run_id,
        )
    if report.counts.listings_new or report.counts.listings_updated or report.counts.sold:
        from carsearch.search.tasks import sync_search_index

        # Right after the run, not at the next tick; the queueing lock keeps it single.
        with contextlib.suppress(AlreadyEnqueued):
            await defer_job(
                context.app.configure_task(sync_search_index.name),
                timestamp=int(datetime.now(UTC).timestamp()),
            )


@ingest_jobs.task(
    queue="scrape",
    name="scrape_carscom_details",
    lock=f"scrape-{SOURCE}",
    retry=_RETRY,
)
async def scrape_carscom_details(listing_ids: list[str], run_id: int) -> None:
    """Detail pages of listings a run found new: transmission, engine, MPG, photos."""
    settings = get_settings()
    dsn = libpq_dsn(resolve_database_url(settings))
    request = ScrapeRequest.from_settings(settings, trigger="schedule")
    counts = RunCounts()
    started = datetime.now(UTC)
    with ingest_connection(dsn) as conn:
        catalog = await asyncio.to_thread(load_catalog, conn)
        async with (
            PoliteFetcher(fetch_policy(settings, request.respect_robots)) as fetcher,
            DecoderScope(conn, settings, None) as decoder,
        ):
            for listing_id in listing_ids:
                try:
                    await fetch_detail(
                        conn, fetcher, decoder, catalog, request, listing_id, counts, started
                    )
                except RunStopped as stop:
                    if stop.status is RunStatus.blocked:
                        count_refusal()
                    logger.warning("detail pages stopped: %s", stop.reason)
                    break
    logger.info("detail pages done", extra={"run_id": run_id, **counts.as_row()})


@ingest_jobs.periodic(cron="23 * * * *")
@ingest_jobs.task(queue="scrape", name="redecode_offline_vins", pass_context=True)
async def redecode_offline_vins(context: JobContext, timestamp: int) -> None:
    """VINs decoded offline while vPIC was unavailable: ask vPIC again."""
    settings = get_settings()
    if not settings.vpic_enabled:
        return
    dsn = libpq_dsn(resolve_database_url(settings))
    with psycopg.connect(dsn, autocommit=True) as conn:
        async with VpicClient(base_url=settings.vpic_base_url) as client:
            decoded = await CachedVinDecoder(conn, VinDecoder(client)).redecode_offline()
    if decoded:
        logger.info("VINs decoded online after an offline decode", extra={"vins": decoded})


def register_schedules(app: App) -> None:
    """The periodic run of each source, at its cron from settings."""
    settings = get_settings()
    app.periodic(cron=settings.carscom_cron, periodic_id=SOURCE)(scrape_carscom)
