"""Prometheus metrics: the per-process series, and the series read from PostgreSQL.

Names and labels are a contract with the alert rules and dashboards in deploy/ (see
docs/METRICS.md). Per-process series are plain prometheus-client objects; with
PROMETHEUS_MULTIPROC_DIR set (the CLI sets it, see observability/multiprocess.py) every
process writes them to files there and /metrics adds them up. Series that describe the
whole deployment (queue depth, table sizes, sync lag, sources) are read from PostgreSQL
when /metrics is scraped, once, whichever process answers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
# A search in the index takes milliseconds; the HTTP buckets would put them all in one.
SEARCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

UNMATCHED_ROUTE = "unmatched"

HTTP_REQUESTS = Counter(
    "carsearch_http_requests",
    "HTTP requests served, by route template and status.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "carsearch_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status.",
    ["method", "route", "status"],
    buckets=HTTP_BUCKETS,
)
HTTP_EXCEPTIONS = Counter(
    "carsearch_http_exceptions",
    "Unhandled exceptions while answering a request (answered 500).",
    ["route", "exception"],
)
CACHE_REQUESTS = Counter(
    "carsearch_cache_requests",
    "Lookups in a response cache: hit or miss.",
    ["cache", "result"],
)
SEARCH_DURATION = Histogram(
    "carsearch_search_duration_seconds",
    "Time spent in the search index, by operation.",
    ["operation"],
    buckets=SEARCH_BUCKETS,
)
SCRAPE_RUNS = Counter(
    "carsearch_scrape_runs",
    "Finished scrape runs, by source and outcome.",
    ["source", "outcome"],
)
SCRAPE_PAGES = Counter(
    "carsearch_scrape_pages",
    "Pages fetched and read by scrapers: search results or listing details.",
    ["source", "kind"],
)
SCRAPE_LISTINGS = Counter(
    "carsearch_scrape_listings",
    "Listings processed by scrape runs, by what changed.",
    ["source", "change"],
)
SCRAPE_BLOCKED = Counter(
    "carsearch_scrape_blocked",
    "Times a source refused us: a bot challenge, robots.txt, or 429s past every retry.",
    ["source"],
)
VIN_DECODES = Counter(
    "carsearch_vin_decodes",
    "VINs decoded, by where the answer came from.",
    ["result"],
)
JOBS = Counter(
    "carsearch_jobs",
    "Jobs the worker finished, by queue, task and outcome.",
    ["queue", "task", "outcome"],
)
DB_POOL_CONNECTIONS = Gauge(
    "carsearch_db_pool_connections",
    "Database pool connections in use, and the pools' capacity, over live processes.",
    ["state"],
    multiprocess_mode="livesum",
)

# Known label values start at zero, so that rates and alerts see a series from the start.
for _cache in ("search", "listing", "history"):
    for _result in ("hit", "miss"):
        CACHE_REQUESTS.labels(_cache, _result)
for _operation in ("search", "facets", "filters"):
    SEARCH_DURATION.labels(_operation)
for _result in ("cache", "vpic", "fallback", "error"):
    VIN_DECODES.labels(_result)
for _state in ("in_use", "capacity"):
    DB_POOL_CONNECTIONS.labels(_state)


def multiprocess_dir() -> str | None:
    """The directory processes share their series through, when there is one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


@dataclass(frozen=True, slots=True)
class DatabaseState:
    """What the deployment-wide series report, as read from PostgreSQL at scrape time."""

    queue_depth: dict[tuple[str, str], int] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)
    sync_lag_seconds: float | None = None
    sources_blocked: dict[str, bool] = field(default_factory=dict)
    last_success: dict[str, float] = field(default_factory=dict)


class DatabaseCollector(Collector):
    """Yields the deployment-wide series of one scrape."""

    def __init__(self, state: DatabaseState) -> None:
        self.state = state

    def collect(self) -> Iterable[Metric]:
        state = self.state
        yield _gauge(
            "carsearch_job_queue_depth",
            "Jobs waiting (todo) or running (doing), by queue.",
            ["queue", "status"],
            ((list(key), value) for key, value in sorted(state.queue_depth.items())),
        )
        yield _gauge(
            "carsearch_table_rows",
            "Live rows of each table (PostgreSQL's estimate).",
            ["table"],
            (([table], rows) for table, rows in sorted(state.table_rows.items())),
        )
        if state.sync_lag_seconds is not None:
            yield _gauge(
                "carsearch_search_sync_lag_seconds",
                "Age of the oldest change the search index has not taken in; 0 when current.",
                [],
                [([], state.sync_lag_seconds)],
            )
        yield _gauge(
            "carsearch_source_blocked",
            "1 while the source is marked blocked, else 0.",
            ["source"],
            (([source], int(blocked)) for source, blocked in sorted(state.sources_blocked.items())),
        )
        yield _gauge(
            "carsearch_scrape_last_success_timestamp_seconds",
            "Unix time the source's last succeeded run ended (none yet: its first run began).",
            ["source"],
            (([source], when) for source, when in sorted(state.last_success.items())),
        )


def _gauge(
    name: str,
    documentation: str,
    labels: list[str],
    samples: Iterable[tuple[list[str], float]],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


class _Registered(Collector):
    """The process's own registry, as one collector of a scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(self.registry.collect())


def exposition(database: DatabaseState | None) -> bytes:
    """The text /metrics answers: every process's series, and the database's if read."""
    scrape = CollectorRegistry(auto_describe=False)
    directory = multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(scrape, path=directory)  # type: ignore[no-untyped-call]
    else:
        scrape.register(_Registered(REGISTRY))
    if database is not None:
        scrape.register(DatabaseCollector(database))
    return generate_latest(scrape)


def instrument_pool(engine: AsyncEngine, capacity: int) -> None:
    """Count the engine's checked-out connections, and add its capacity while it lives.

    Gauges in "livesum" mode: a process that ends takes its share with it.
    """
    from sqlalchemy import event

    in_use = DB_POOL_CONNECTIONS.labels("in_use")
    total = DB_POOL_CONNECTIONS.labels("capacity")
    total.inc(capacity)
    disposed = False

    def checked_out(*_: object) -> None:
        in_use.inc()

    def checked_in(*_: object) -> None:
        in_use.dec()

    def engine_disposed(*_: object) -> None:
        # dispose() ends an engine's life here (lifespans, jobs); count its capacity once.
        nonlocal disposed
        if not disposed:
            disposed = True
            total.dec(capacity)

    event.listen(engine.sync_engine, "checkout", checked_out)
    event.listen(engine.sync_engine, "checkin", checked_in)
    event.listen(engine.sync_engine, "engine_disposed", engine_disposed)
