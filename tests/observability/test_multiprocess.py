"""Metrics as an operator runs CarSearch: `carsearch serve --workers 2` and `carsearch worker`
as real processes sharing one metrics directory, and one /metrics that adds them up."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest
from loopback import free_port
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from carsearch.db.engine import libpq_dsn
from carsearch.jobs import create_job_app

SYNCS_SUCCEEDED_TASK = "search:carsearch.search.tasks.sync_search_index"
SYNCS_SUCCEEDED = (
    "carsearch_jobs_total",
    frozenset(
        {
            ("queue", "search"),
            ("task", SYNCS_SUCCEEDED_TASK),
            ("outcome", "succeeded"),
        }
    ),
)
REQUESTS_PER_ROUND = 40


async def defer_search_sync(dsn: str) -> None:
    job_app = create_job_app(dsn)
    async with job_app.open_async():
        await job_app.configure_task(SYNCS_SUCCEEDED_TASK).defer_async()


def environment(database_url: URL, index_dir: Path, metrics_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url.render_as_string(hide_password=False),
        "CARSEARCH_SEARCH_INDEX_DIR": str(index_dir),
        "CARSEARCH_METRICS_DIR": str(metrics_dir),
        "CARSEARCH_ENV": "test",
        "CARSEARCH_LOG_LEVEL": "warning",
        "CARSEARCH_RATE_LIMIT_ENABLED": "false",
        # Nothing written to the shared test database's search log.
        "CARSEARCH_SEARCH_ANALYTICS": "false",
    }
    env.pop("REDIS_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@contextmanager
def running(args: list[str], env: dict[str, str], log: IO[str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "carsearch.cli", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def samples(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_total(values: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    return sum(v for (name, _), v in values.items() if name == "carsearch_http_requests_total")


def requests_by_process(metrics_dir: Path, scratch: Path) -> dict[str, float]:
    """Requests each process counted, read from its own file alone."""
    served = {}
    for path in metrics_dir.glob("counter_*.db"):
        alone = scratch / path.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        text = generate_latest(registry).decode()
        shutil.rmtree(alone)
        served[path.stem] = sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "carsearch_http_requests_total"
        )
    return served


def wait_until(condition: str, check: object, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{condition} within {seconds} s; see {log}")


def test_one_metrics_endpoint_adds_up_two_api_processes_and_the_job_worker(
    database_url: URL, search_index: Path, make_database: object, tmp_path: Path
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # Left by a process that is gone: serving starts without its counts.
    (metrics_dir / "counter_999999999.db").write_bytes(b"stale")
    # The job worker works on a database of its own, so that its schedule leaves the shared
    # test database alone; it reports through the same directory.
    worker_url: URL = make_database(migrated=True)  # type: ignore[operator]
    # A search sync waits in the queue, as the scraper leaves one after a run.
    asyncio.run(defer_search_sync(libpq_dsn(worker_url)))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    serve_env = environment(database_url, search_index, metrics_dir)
    worker_env = environment(worker_url, tmp_path / "no-index", metrics_dir)
    with (
        serve_log.open("w") as serve_out,
        worker_log.open("w") as worker_out,
        running(["serve", "--port", str(port), "--workers", "2"], serve_env, serve_out),
        running(["worker", "--concurrency", "1"], worker_env, worker_out),
    ):
        wait_until(
            "the API answered /readyz",
            lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200,
            90,
            serve_log,
        )
        assert not (metrics_dir / "counter_999999999.db").exists()
        pool = "carsearch_db_pool_connections"
        # Both API processes have opened their pool: its capacity (10 + 10) counts twice.
        wait_until(
            "both API processes reported their database pool",
            lambda: samples(base).get((pool, frozenset({("state", "capacity")}))) == 40,
            60,
            serve_log,
        )
        before = requests_total(samples(base))
        sent = 0
        served: dict[str, float] = {}
        for _round in range(5):
            # New connections, several at once, so that both processes take some.
            with ThreadPoolExecutor(8) as pool_of_clients:
                statuses = list(
                    pool_of_clients.map(
                        lambda _: httpx.get(f"{base}/api/v1/filters", timeout=10).status_code,
                        range(REQUESTS_PER_ROUND),
                    )
                )
            assert statuses == [200] * REQUESTS_PER_ROUND
            sent += REQUESTS_PER_ROUND
            served = requests_by_process(metrics_dir, tmp_path / "alone")
            if len([count for count in served.values() if count > 0]) >= 2:
                break
        assert len([count for count in served.values() if count > 0]) >= 2, served
        after = samples(base)
        # Every request counted once, whichever process answered it (and the first scrape).
        assert requests_total(after) - before == sent + 1
        wait_until(
            "the job worker's search sync was counted",
            lambda: samples(base).get(SYNCS_SUCCEEDED, 0) > 0,
            60,
            worker_log,
        )
    # Stopped processes take their live gauges out of the sums.
    assert list(metrics_dir.glob("gauge_livesum_*.db")) == []


def test_the_command_line_does_not_load_prometheus_client_before_the_metrics_directory() -> None:
    """prometheus-client picks in-memory or per-process values when first imported: the
    commands set the directory up first, so nothing they import may load it earlier."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, carsearch.cli; print('prometheus_client' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
