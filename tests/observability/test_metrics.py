"""/metrics after real traffic: requests, a scrape of the demo site, a job run by a worker.

The app runs on a database of its own (seeded, then scraped into), so that the series read
from PostgreSQL can be checked against what happened. prometheus-client keeps one
registry per process and other tests count into it too, so every count is checked as the
difference between a scrape before the traffic and one after it.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from app_settings import settings_for_tests
from databases import migrated_database
from fake_vpic import FakeVpic, running_fake_vpic
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from loopback import serving
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL, make_url

from carsearch.app import create_app
from carsearch.config import Settings, get_settings
from carsearch.db.engine import create_async_db_engine
from carsearch.ingest.demo_site import create_demo_site
from carsearch.ingest.service import CarsComRun, ScrapeRequest
from carsearch.jobs import create_job_app, known_queues
from carsearch.listings.vocab import RunStatus
from carsearch.observability.jobs import defer_job
from carsearch.observability.logging import JsonFormatter, request_id_var
from carsearch.search.indexer import rebuild_index
from carsearch.search.store import IndexStore
from carsearch.seed.service import seed_inventory

DEPLOY = Path(__file__).parents[2] / "deploy"
SPEC_SERIES = {
    "carsearch_http_requests_total": "counter",
    "carsearch_http_request_duration_seconds": "histogram",
    "carsearch_http_exceptions_total": "counter",
    "carsearch_cache_requests_total": "counter",
    "carsearch_search_duration_seconds": "histogram",
    "carsearch_scrape_runs_total": "counter",
    "carsearch_scrape_pages_total": "counter",
    "carsearch_scrape_listings_total": "counter",
    "carsearch_scrape_blocked_total": "counter",
    "carsearch_vin_decodes_total": "counter",
    "carsearch_jobs_total": "counter",
    "carsearch_db_pool_connections": "gauge",
    "carsearch_job_queue_depth": "gauge",
    "carsearch_table_rows": "gauge",
    "carsearch_search_sync_lag_seconds": "gauge",
    "carsearch_source_blocked": "gauge",
    "carsearch_scrape_last_success_timestamp_seconds": "gauge",
}
SYNC_TASK = "search:carsearch.search.tasks.sync_search_index"
JOB_REQUEST_ID = "metrics-test-request"
UNKNOWN_VIN = "1HGCM82633A999999"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Family types by sample name, and every sample's value by name and labels."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            types[sample.name] = family.type
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def matching(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    wanted = set(labels.items())
    return {key: v for (n, key), v in samples.items() if n == name and wanted <= key}


@dataclass
class Traffic:
    before: Samples
    after: Samples
    types: dict[str, str]
    text: str
    sent: Counter[tuple[str, str, str]]
    log_lines: list[dict[str, Any]] = field(default_factory=list)

    def delta(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


@pytest.fixture(scope="module")
def dsn(server_url: URL) -> Iterator[str]:
    """A database of this module's own: migrated, a small inventory, then scraped into."""
    with migrated_database(server_url, "carsearch_metrics") as dsn:
        seed_inventory(dsn, listings=300, seed=3)
        yield dsn


@pytest.fixture(scope="module")
def vpic() -> Iterator[FakeVpic]:
    with running_fake_vpic() as state:
        yield state


@pytest.fixture(scope="module")
def settings(dsn: str, vpic: FakeVpic, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    index_dir = tmp_path_factory.mktemp("metrics-index")
    rebuild_index(IndexStore(index_dir), dsn)
    return settings_for_tests(
        index_dir,
        database_url=dsn,
        vpic_base_url=vpic.base_url,
        carscom_min_interval_seconds=0,
        scraper_user_agent="CarSearchBot/0.1",
    )


@pytest.fixture(scope="module")
async def traffic(settings: Settings, dsn: str) -> AsyncIterator[Traffic]:
    app = create_app(settings)

    async def boom(thing: str) -> None:
        raise LookupError(thing)

    # Something has to fail for the exception counter; nothing in the API may.
    app.add_api_route("/boom/{thing}", boom)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
    ):
        before = parse((await client.get("/metrics")).text)[1]
        sent = await _requests(app, client)
        await _scrapes(settings, dsn)
        log_lines = await _sync_job(settings, dsn)
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        types, after = parse(response.text)
        # The first scrape was counted once it had been answered.
        sent[("GET", "/metrics", "200")] += 1
        yield Traffic(before, after, types, response.text, sent, log_lines)


async def _requests(app: FastAPI, client: AsyncClient) -> Counter[tuple[str, str, str]]:
    sent: Counter[tuple[str, str, str]] = Counter()

    async def get(url: str, route: str, status: int, **params: Any) -> Any:
        response = await client.get(url, params=params)
        assert response.status_code == status, response.text
        sent[("GET", route, str(status))] += 1
        return response

    found = await get("/api/v1/listings", "/api/v1/listings", 200, make="Toyota")
    await get("/api/v1/listings", "/api/v1/listings", 200, make="Toyota")  # from the cache
    await get("/api/v1/facets", "/api/v1/facets", 200)
    await get("/api/v1/filters", "/api/v1/filters", 200)
    vin = found.json()["data"][0]["vin"]
    await get(f"/api/v1/listings/{vin}", "/api/v1/listings/{vin}", 200)
    await get(f"/api/v1/listings/{UNKNOWN_VIN}", "/api/v1/listings/{vin}", 404)
    await get("/api/v1/no-such-thing", "unmatched", 404)
    await get("/api/v1/listings", "/api/v1/listings", 422, page_size="many")
    await get("/healthz", "/healthz", 200)
    await get("/readyz", "/readyz", 200)
    failing = AsyncClient(
        transport=ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    )
    async with failing:
        response = await failing.get("/boom/now")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    sent[("GET", "/boom/{thing}", "500")] += 1
    return sent


async def _scrapes(settings: Settings, dsn: str) -> None:
    """Two runs of the demo site (new listings, then the same ones again), then a run the
    site answers with a bot challenge."""
    with serving(create_demo_site()) as site:
        request = ScrapeRequest.from_settings(
            settings, zip="95129", radius=50, max_pages=2, base_url=site
        )
        for _ in range(2):
            report = await CarsComRun(settings, dsn, request).execute()
            assert report.status is RunStatus.succeeded, report.error
    with serving(create_demo_site(challenge=True)) as site:
        request = ScrapeRequest.from_settings(settings, zip="95129", max_pages=1, base_url=site)
        report = await CarsComRun(settings, dsn, request).execute()
        assert report.status is RunStatus.blocked


async def _sync_job(settings: Settings, dsn: str) -> list[dict[str, Any]]:
    """Defer the search sync as a request would, run it with a worker, return its logs."""
    lines: list[dict[str, Any]] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(JsonFormatter().format(record)))

    handler = Collect(logging.INFO)
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    job_app = create_job_app(dsn)
    try:
        with pytest.MonkeyPatch.context() as patch:
            # The job reads the settings of the process, as it does in a worker.
            patch.setenv("DATABASE_URL", dsn)
            patch.setenv("CARSEARCH_SEARCH_INDEX_DIR", str(settings.index_dir))
            get_settings.cache_clear()
            async with job_app.open_async():
                token = request_id_var.set(JOB_REQUEST_ID)
                try:
                    await defer_job(
                        job_app.configure_task(SYNC_TASK),
                        timestamp=int(datetime.now(UTC).timestamp()),
                    )
                finally:
                    request_id_var.reset(token)
                await job_app.run_worker_async(
                    queues=["search"], wait=False, install_signal_handlers=False
                )
    finally:
        get_settings.cache_clear()
        root.removeHandler(handler)
        root.setLevel(previous_level)
    return lines


def test_every_series_of_the_spec_is_exposed_with_its_type(traffic: Traffic) -> None:
    for name, kind in SPEC_SERIES.items():
        sample_name = f"{name}_count" if kind == "histogram" else name
        assert traffic.types.get(sample_name) == kind, name


def test_requests_are_counted_by_route_template_method_and_status(traffic: Traffic) -> None:
    for (method, route, status), count in traffic.sent.items():
        labels = {"method": method, "route": route, "status": status}
        assert traffic.delta("carsearch_http_requests_total", **labels) == count, labels
        histogram = "carsearch_http_request_duration_seconds"
        assert traffic.delta(f"{histogram}_count", **labels) == count, labels
        assert traffic.delta(f"{histogram}_bucket", **labels, le="+Inf") == count, labels
        assert traffic.delta(f"{histogram}_sum", **labels) > 0
    # Never a raw path: a label per VIN would grow without bound.
    routes = {
        dict(key)["route"] for key in matching(traffic.after, "carsearch_http_requests_total")
    }
    assert not [route for route in routes if UNKNOWN_VIN in route]


def test_an_unhandled_exception_is_counted_with_its_route(traffic: Traffic) -> None:
    assert (
        traffic.delta(
            "carsearch_http_exceptions_total", route="/boom/{thing}", exception="LookupError"
        )
        == 1
    )


def test_cache_and_search_time_are_counted(traffic: Traffic) -> None:
    cache = "carsearch_cache_requests_total"
    assert traffic.delta(cache, cache="search", result="hit") == 1
    # listings (then the hit), facets, filters; the 422 never gets that far
    assert traffic.delta(cache, cache="search", result="miss") == 3
    # A listing found and one not found; nothing is cached for the one not found.
    assert traffic.delta(cache, cache="listing", result="miss") == 2
    assert traffic.delta(cache, cache="listing", result="hit") == 0
    searched = "carsearch_search_duration_seconds_count"
    assert traffic.delta(searched, operation="search") == 1
    assert traffic.delta(searched, operation="facets") == 1
    assert traffic.delta(searched, operation="filters") == 1
    assert traffic.delta("carsearch_search_duration_seconds_sum", operation="search") > 0


def test_scrape_runs_pages_listings_and_blocks_are_counted(traffic: Traffic) -> None:
    source = {"source": "carscom"}
    assert traffic.delta("carsearch_scrape_runs_total", **source, outcome="succeeded") == 2
    assert traffic.delta("carsearch_scrape_runs_total", **source, outcome="blocked") == 1
    assert traffic.delta("carsearch_scrape_runs_total", **source, outcome="failed") == 0
    # Two results pages per run; the detail pages of the first run's new listings.
    assert traffic.delta("carsearch_scrape_pages_total", **source, kind="search") == 4
    assert traffic.delta("carsearch_scrape_pages_total", **source, kind="detail") >= 1
    new = traffic.delta("carsearch_scrape_listings_total", **source, change="new")
    assert new > 60
    # The second run saw the same cars again.
    assert traffic.delta("carsearch_scrape_listings_total", **source, change="unchanged") >= new
    assert traffic.delta("carsearch_scrape_blocked_total", **source) == 1


def test_vin_decodes_are_counted_by_where_the_answer_came_from(traffic: Traffic) -> None:
    decoded_online = traffic.delta("carsearch_vin_decodes_total", result="vpic")
    assert decoded_online > 60
    assert traffic.delta("carsearch_vin_decodes_total", result="cache") >= decoded_online
    assert traffic.delta("carsearch_vin_decodes_total", result="error") == 0


def test_the_job_is_counted_and_logs_with_the_request_id_that_deferred_it(
    traffic: Traffic,
) -> None:
    outcome = {"queue": "search", "task": SYNC_TASK}
    # Ours, and perhaps one the schedule deferred while the worker ran.
    assert traffic.delta("carsearch_jobs_total", **outcome, outcome="succeeded") >= 1
    assert traffic.delta("carsearch_jobs_total", **outcome, outcome="failed") == 0
    of_the_job = [line for line in traffic.log_lines if line.get("request_id") == JOB_REQUEST_ID]
    messages = " | ".join(line["message"] for line in of_the_job)
    assert "Starting job" in messages
    assert "search index synced" in messages  # the task's own line
    assert "success" in messages.lower()  # procrastinate's line about how it ended
    # The task never sees the id as an argument of its own.
    synced = next(line for line in of_the_job if line["message"] == "search index synced")
    assert synced["indexed"] > 0


def test_the_database_pool_is_reported(traffic: Traffic) -> None:
    pool = "carsearch_db_pool_connections"
    assert value(traffic.after, pool, state="capacity") >= 20  # this app's engine: 10 + 10
    assert value(traffic.after, pool, state="in_use") >= 0


def test_series_read_from_the_database(traffic: Traffic) -> None:
    after = traffic.after
    for queue in known_queues():
        for status in ("todo", "doing"):
            key = frozenset({("queue", queue), ("status", status)})
            assert after[("carsearch_job_queue_depth", key)] >= 0, key
    assert value(after, "carsearch_job_queue_depth", queue="search", status="doing") == 0
    assert value(after, "carsearch_table_rows", table="listings") >= 300
    assert ("carsearch_table_rows", frozenset({("table", "scrape_runs")})) in after
    # The sync job has just taken in every change.
    lag = value(after, "carsearch_search_sync_lag_seconds")
    assert 0 <= lag < 60
    assert value(after, "carsearch_source_blocked", source="carscom") == 1
    last_success = value(after, "carsearch_scrape_last_success_timestamp_seconds", source="carscom")
    assert 0 <= datetime.now(UTC).timestamp() - last_success < 600


def test_every_metric_the_alerts_and_dashboards_use_is_exposed(traffic: Traffic) -> None:
    if not DEPLOY.is_dir():
        pytest.skip("no deploy/ directory yet")
    files = [*DEPLOY.glob("prometheus/*.yml"), *DEPLOY.glob("grafana/**/*.json")]
    exposed = set(traffic.types)
    for family in text_string_to_metric_families(traffic.text):
        exposed.add(family.name)
    missing: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text()
        # Recording rules make series of their own.
        recorded = set(re.findall(r"record:\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", text))
        for name in set(re.findall(r"carsearch_[a-z_]+", text)) - recorded:
            base = re.sub(r"_(bucket|sum|count|created)$", "", name)
            if name not in exposed and base not in exposed:
                missing.setdefault(name, []).append(str(path.relative_to(DEPLOY)))
    assert missing == {}


async def test_metrics_answer_without_the_database_series_when_it_is_down(
    tmp_path: Path,
) -> None:
    settings = settings_for_tests(tmp_path / "index")
    down = create_async_db_engine(
        make_url("postgresql+psycopg://nobody@127.0.0.1:1/none"), settings
    )
    app = create_app(settings, engine=down)
    try:
        async with (
            app.router.lifespan_context(app),
            AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client,
        ):
            response = await client.get("/metrics")
            ready = await client.get("/readyz")
    finally:
        await down.dispose()
    assert response.status_code == 200
    types, _samples = parse(response.text)
    assert "carsearch_http_requests_total" in types
    assert "carsearch_table_rows" not in types
    assert "carsearch_job_queue_depth" not in types
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "reason": "database unreachable"}


async def test_requests_answered_before_routing_are_counted_under_their_route(
    start_app: Any, search_index: Path
) -> None:
    def counted(method: str, route: str, status: str) -> float:
        labels = {"method": method, "route": route, "status": status}
        return REGISTRY.get_sample_value("carsearch_http_requests_total", labels) or 0.0

    refused = ("GET", "/api/v1/filters", "429")
    preflight = ("OPTIONS", "/api/v1/listings/{vin}", "200")
    before = counted(*refused), counted(*preflight)
    async with start_app(search_index, rate_limit_enabled=True, rate_limits="search=1/60") as (
        _app,
        http,
    ):
        assert (await http.get("/api/v1/filters")).status_code == 200
        assert (await http.get("/api/v1/filters")).status_code == 429
        response = await http.options(
            f"/api/v1/listings/{UNKNOWN_VIN}",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
        )
        assert response.status_code == 200
    assert (counted(*refused), counted(*preflight)) == (before[0] + 1, before[1] + 1)
