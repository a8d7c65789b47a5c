"""A scrape run of cars.com: results pages, detail pages, normalize, decode, store, record.

    fetch (polite) -> parse (pure) -> normalize (pure) -> decode VINs (cached) -> store
    (a page per transaction) -> sold detection -> scrape_runs row -> search sync

Everything a run does lands in its `scrape_runs` row, whatever way it ends: succeeded,
blocked (a challenge page: the source is left alone, backing off up to a day), or failed
(robots.txt said no, the site was unreachable, or something broke).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from carsearch.config import Settings
from carsearch.dealers.geo import zip_centroid
from carsearch.errors import SetupError
from carsearch.ingest import carscom, repository
from carsearch.ingest.fetch import (
    FetchFailed,
    FetchPolicy,
    FetchResult,
    PoliteFetcher,
    RobotsDisallowed,
)
from carsearch.ingest.normalize import Catalog, NormalizedListing, Rejected, normalize_listing
from carsearch.ingest.pipeline import RunCounts, Stored, store_page
from carsearch.ingest.records import ScrapedListing
from carsearch.ingest.vin_cache import CachedVinDecoder
from carsearch.ingest.vin_decode import VinDecoder
from carsearch.ingest.vpic import VpicClient
from carsearch.listings.vocab import BodyStyle, RunStatus
from carsearch.observability.metrics import (
    SCRAPE_BLOCKED,
    SCRAPE_LISTINGS,
    SCRAPE_PAGES,
    SCRAPE_RUNS,
)

logger = logging.getLogger(__name__)

SOURCE = carscom.SOURCE
# A run left "running" this long ago belonged to a process that died.
STALE_RUN = timedelta(hours=6)
LISTING_CHANGES = ("new", "updated", "unchanged", "sold")

# The source's series start at zero, so that rates and alerts see them before any event.
for _status in (RunStatus.succeeded, RunStatus.failed, RunStatus.blocked):
    SCRAPE_RUNS.labels(SOURCE, _status.value)
for _kind in ("search", "detail"):
    SCRAPE_PAGES.labels(SOURCE, _kind)
for _change in LISTING_CHANGES:
    SCRAPE_LISTINGS.labels(SOURCE, _change)
SCRAPE_BLOCKED.labels(SOURCE)


class SourceBlocked(SetupError):
    """The source answered a challenge recently and is being left alone."""


@dataclass(frozen=True, slots=True)
class ScrapeRequest:
    zip: str
    radius: int
    max_pages: int
    base_url: str
    respect_robots: bool
    trigger: str = "manual"  # or "schedule"
    # Fetch the detail pages of new listings in this run (a command does); the scheduled
    # job leaves them to detail jobs instead.
    fetch_details: bool = True
    max_details: int = 200
    force: bool = False  # run even while the source is backing off

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ScrapeRequest:
        values: dict[str, Any] = {
            "zip": settings.carscom_zip,
            "radius": settings.carscom_radius,
            "max_pages": settings.carscom_max_pages,
            "base_url": settings.carscom_base_url,
            "respect_robots": settings.carscom_respect_robots,
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def results_url(self, page: int) -> str:
        query = {
            "stock_type": "all",
            "zip": self.zip,
            "maximum_distance": self.radius,
            "page": page,
        }
        return f"{self.base_url.rstrip('/')}/shopping/results/?{urlencode(query)}"

    def detail_url(self, source_listing_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/vehicledetail/{source_listing_id}/"


@dataclass
class RunReport:
    run_id: int
    status: RunStatus
    counts: RunCounts
    robots_respected: bool
    total_pages: int | None = None
    blocked_reason: str | None = None
    blocked_until: datetime | None = None
    error: str | None = None
    new_listings: list[Stored] = field(default_factory=list)
    vin_online_calls: int = 0
    vin_offline_fallbacks: int = 0


Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


def _no_progress(stage: str, done: int, total: int | None) -> None:
    pass


def ingest_connection(dsn: str) -> psycopg.Connection:
    """The connection a run writes through.

    - Commits do not wait for the disk: a crash can lose the last moments of pages, which
      the next run reads again (storing is idempotent); a page still commits whole or not
      at all.
    - Every lookup of a run goes by a key with an index, so scans are ruled out. This
      matters for the foreign-key checks PostgreSQL plans once per connection: planned
      while `listings` is small (a new database), they scan it, and each new listing then
      reads all the others. Measured, 5,000 new listings into an empty database: 1,800/s
      with scans allowed, 3,965/s without.
    """
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET enable_seqscan = off")
    return conn


def load_catalog(conn: psycopg.Connection) -> Catalog:
    """The reference makes and models as the database holds them (the seed loads them)."""
    rows = repository.reference_models(conn)
    if not rows:
        return Catalog.from_packaged()
    models: dict[str, list[str]] = {}
    make_aliases: dict[str, list[str]] = {}
    model_aliases: dict[tuple[str, str], list[str]] = {}
    body_styles: dict[tuple[str, str], BodyStyle] = {}
    for make, aliases, model, model_alias_list, body in rows:
        models.setdefault(make, []).append(model)
        make_aliases[make] = aliases
        model_aliases[(make, model)] = model_alias_list
        body_styles[(make, model)] = BodyStyle(body)
    return Catalog.from_reference(
        models.items(),
        make_aliases=make_aliases,
        model_aliases=model_aliases,
        body_styles=body_styles,
    )


def fetch_policy(settings: Settings, respect_robots: bool) -> FetchPolicy:
    return FetchPolicy(
        user_agent=settings.scraper_identity,
        min_interval_seconds=settings.carscom_min_interval_seconds,
        concurrency=settings.carscom_concurrency,
        respect_robots=respect_robots,
    )


class RunStopped(Exception):
    """Ends the run early with a status and a reason."""

    def __init__(self, status: RunStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CarsComRun:
    """One run. `execute()` never raises for what the site or its pages do."""

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        request: ScrapeRequest,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        vpic_transport: httpx.AsyncBaseTransport | None = None,
        progress: Progress = _no_progress,
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.request = request
        self.transport = transport
        self.vpic_transport = vpic_transport
        self.progress = progress
        self.counts = RunCounts()

    async def execute(self) -> RunReport:
        request = self.request
        with ingest_connection(self.dsn) as conn:
            now = datetime.now(UTC)
            repository.fail_stale_runs(conn, SOURCE, now - STALE_RUN)
            blocked_until = repository.source_blocked_until(conn, SOURCE)
            if blocked_until is not None and blocked_until > now and not request.force:
                raise SourceBlocked(
                    f"{SOURCE} answered a bot challenge and is left alone until "
                    f"{blocked_until:%Y-%m-%d %H:%M} UTC (--force runs it anyway)"
                )
            parameters = {
                "zip": request.zip,
                "radius": request.radius,
                "max_pages": request.max_pages,
                "base_url": request.base_url,
            }
            run_id = repository.start_run(
                conn, SOURCE, request.trigger, parameters, request.respect_robots
            )
            report = RunReport(run_id, RunStatus.running, self.counts, request.respect_robots)
            logger.info(
                "scrape run started",
                extra={"source": SOURCE, "run_id": run_id, "robots": request.respect_robots},
            )
            try:
                await self._run(conn, report)
                report.status = RunStatus.succeeded
            except RunStopped as stop:
                report.status = stop.status
                if stop.status is RunStatus.blocked:
                    report.blocked_reason = stop.reason
                else:
                    report.error = stop.reason
            except Exception as exc:  # a bug or the database: the run row still says so
                logger.exception("scrape run failed", extra={"run_id": run_id})
                report.status = RunStatus.failed
                report.error = f"{type(exc).__name__}: {exc}"[:1000]
            self._close(conn, report)
        return report

    def _close(self, conn: psycopg.Connection, report: RunReport) -> None:
        now = datetime.now(UTC)
        if report.status is RunStatus.blocked:
            report.blocked_until = repository.record_block(
                conn, SOURCE, report.blocked_reason or "blocked", now
            )
        elif report.status is RunStatus.succeeded:
            repository.record_success(conn, SOURCE, now)
        repository.finish_run(
            conn,
            report.run_id,
            {
                **self.counts.as_row(),
                "status": report.status.value,
                "blocked_reason": report.blocked_reason,
                "error": report.error,
            },
        )
        logger.info(
            "scrape run finished",
            extra={"run_id": report.run_id, "status": report.status.value, **self.counts.as_row()},
        )
        count_run(report.status, self.counts)

    async def _run(self, conn: psycopg.Connection, report: RunReport) -> None:
        request = self.request
        catalog = await asyncio.to_thread(load_catalog, conn)
        started = datetime.now(UTC)
        async with (
            PoliteFetcher(
                fetch_policy(self.settings, request.respect_robots), transport=self.transport
            ) as fetcher,
            self._vin_decoder(conn) as decoder,
        ):
            area_pages: int | None = None  # as the first results page states it
            for page in range(1, request.max_pages + 1):
                self.progress("results pages", page - 1, report.total_pages)
                result = await self._fetch(fetcher, request.results_url(page), first=page == 1)
                if result is None:
                    break
                try:
                    parsed = carscom.parse_search_results(result.text, base_url=request.base_url)
                except carscom.BlockedPage as blocked:
                    raise RunStopped(RunStatus.blocked, f"page {page}: {blocked.reason}") from None
                except carscom.ParseError as exc:
                    self.counts.errors += 1
                    self.counts.skipped["garbled_page"] += 1
                    logger.warning("results page %d unreadable: %s", page, exc)
                    continue
                self.counts.pages_fetched += 1
                SCRAPE_PAGES.labels(SOURCE, "search").inc()
                if area_pages is None:
                    area_pages = parsed.total_pages
                report.total_pages = min(area_pages or page, request.max_pages)
                stored = await self._store(conn, decoder, catalog, parsed.listings, started)
                report.new_listings.extend(item for item in stored if item.new)
                if area_pages is None or page >= area_pages:
                    break
            self.progress("results pages", self.counts.pages_fetched, report.total_pages)
            if request.fetch_details and report.new_listings:
                await self._details(conn, fetcher, decoder, catalog, report.new_listings, started)
            report.vin_online_calls = decoder.online_calls
            report.vin_offline_fallbacks = decoder.offline_fallbacks
        # Absence proves a sale only when the run saw every results page of its area.
        saw_everything = area_pages is not None and self.counts.pages_fetched >= area_pages
        if saw_everything and not self.counts.errors:
            self.counts.sold = await asyncio.to_thread(self._mark_sold, conn, started)

    async def _fetch(self, fetcher: PoliteFetcher, url: str, *, first: bool) -> FetchResult | None:
        """The page, or None when paging should stop; RunStopped when the run must end."""
        try:
            result = await fetcher.fetch(url)
        except RobotsDisallowed:
            count_refusal()
            raise RunStopped(
                RunStatus.failed,
                f"robots.txt disallows {url}; CarSearch honours it unless an operator who "
                "holds the site's permission sets CARSEARCH_CARSCOM_RESPECT_ROBOTS=false",
            ) from None
        except FetchFailed as failure:
            self.counts.errors += 1
            if failure.status == 429:
                count_refusal()
            if first:
                raise RunStopped(RunStatus.failed, f"{url}: {failure}") from None
            logger.warning("stopping at a page that failed: %s", failure)
            return None
        reason = carscom.detect_block(result.text)
        if reason is not None:
            raise RunStopped(RunStatus.blocked, reason)
        if result.status >= 400:
            self.counts.errors += 1
            if first:
                raise RunStopped(RunStatus.failed, f"{url}: HTTP {result.status}")
            return None
        return result

    def _vin_decoder(self, conn: psycopg.Connection) -> DecoderScope:
        return DecoderScope(conn, self.settings, self.vpic_transport)

    async def _store(
        self,
        conn: psycopg.Connection,
        decoder: CachedVinDecoder,
        catalog: Catalog,
        listings: Sequence[ScrapedListing],
        seen_at: datetime,
    ) -> list[Stored]:
        self.counts.listings_parsed += len(listings)
        good: list[NormalizedListing] = []
        for raw in listings:
            result = normalize_listing(raw, catalog)
            if isinstance(result, Rejected):
                self.counts.skipped[result.reason] += 1
                logger.info(
                    "listing skipped",
                    extra={"listing": result.source_listing_id, "reason": result.reason},
                )
            else:
                good.append(result)
        if not good:
            return []
        decodes = await decoder.decode([listing.vin for listing in good])
        try:
            return await asyncio.to_thread(store_page, conn, good, decodes, self.counts, seen_at)
        except psycopg.DataError as exc:  # a value the database refuses: the page is skipped
            self.counts.errors += 1
            self.counts.skipped["refused_by_database"] += len(good)
            logger.warning("page not stored: %s", exc)
            return []

    async def _details(
        self,
        conn: psycopg.Connection,
        fetcher: PoliteFetcher,
        decoder: CachedVinDecoder,
        catalog: Catalog,
        listings: Sequence[Stored],
        seen_at: datetime,
    ) -> None:
        wanted = listings[: self.request.max_details]
        for done, item in enumerate(wanted):
            self.progress("detail pages", done, len(wanted))
            await fetch_detail(
                conn,
                fetcher,
                decoder,
                catalog,
                self.request,
                item.source_listing_id,
                self.counts,
                seen_at,
            )
        self.progress("detail pages", len(wanted), len(wanted))

    def _mark_sold(self, conn: psycopg.Connection, started: datetime) -> int:
        centroid = zip_centroid(self.request.zip)
        if centroid is None:
            return 0
        return repository.mark_unseen_sold(
            conn,
            source=SOURCE,
            cutoff=started - timedelta(days=self.settings.sold_after_days),
            now=datetime.now(UTC),
            latitude=centroid.latitude,
            longitude=centroid.longitude,
            radius_miles=self.request.radius,
        )


async def fetch_detail(
    conn: psycopg.Connection,
    fetcher: PoliteFetcher,
    decoder: CachedVinDecoder,
    catalog: Catalog,
    request: ScrapeRequest,
    source_listing_id: str,
    counts: RunCounts,
    seen_at: datetime,
) -> None:
    """Fetch one detail page and store what it adds. Raises RunStopped on a challenge."""
    url = request.detail_url(source_listing_id)
    try:
        result = await fetcher.fetch(url)
    except (RobotsDisallowed, FetchFailed) as failure:
        if isinstance(failure, RobotsDisallowed) or failure.status == 429:
            count_refusal()
        counts.errors += 1
        logger.warning("detail page not fetched: %s", failure)
        return
    reason = carscom.detect_block(result.text)
    if reason is not None:
        raise RunStopped(RunStatus.blocked, reason)
    counts.pages_fetched += 1
    SCRAPE_PAGES.labels(SOURCE, "detail").inc()
    if result.status >= 400:
        counts.skipped["detail_unavailable"] += 1
        return
    try:
        detail = carscom.parse_detail_page(result.text, url=url)
    except carscom.ListingGone:
        await asyncio.to_thread(repository.mark_gone, conn, SOURCE, source_listing_id)
        counts.skipped["listing_gone"] += 1
        return
    except carscom.BlockedPage as blocked:
        raise RunStopped(RunStatus.blocked, blocked.reason) from None
    except carscom.ParseError as exc:
        counts.errors += 1
        counts.skipped["garbled_page"] += 1
        logger.warning("detail page unreadable: %s", exc)
        return
    normalized = normalize_listing(detail, catalog)
    if isinstance(normalized, Rejected):
        counts.skipped[normalized.reason] += 1
        return
    decodes = await decoder.decode([normalized.vin])
    detail_counts = RunCounts()
    await asyncio.to_thread(
        functools.partial(store_page, detail=True),
        conn,
        [normalized],
        decodes,
        detail_counts,
        seen_at,
    )
    counts.price_changes += detail_counts.price_changes


def count_run(status: RunStatus, counts: RunCounts) -> None:
    """A finished run in the metrics: its outcome, what it did to listings, a block."""
    SCRAPE_RUNS.labels(SOURCE, status.value).inc()
    changes = (counts.listings_new, counts.listings_updated, counts.listings_unchanged)
    for change, number in zip(LISTING_CHANGES, (*changes, counts.sold), strict=True):
        SCRAPE_LISTINGS.labels(SOURCE, change).inc(number)
    if status is RunStatus.blocked:
        count_refusal()


def count_refusal() -> None:
    """The source refused us: a challenge page, robots.txt, or 429s past every retry."""
    SCRAPE_BLOCKED.labels(SOURCE).inc()


class DecoderScope:
    """A CachedVinDecoder whose vPIC client lives as long as the run."""

    def __init__(
        self,
        conn: psycopg.Connection,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.transport = transport
        self.http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> CachedVinDecoder:
        decoder = None
        if self.settings.vpic_enabled:
            self.http = httpx.AsyncClient(
                transport=self.transport, headers={"User-Agent": self.settings.scraper_identity}
            )
            decoder = VinDecoder(VpicClient(self.http, base_url=self.settings.vpic_base_url))
        return CachedVinDecoder(self.conn, decoder)

    async def __aexit__(self, *exc_info: object) -> None:
        if self.http is not None:
            await self.http.aclose()
