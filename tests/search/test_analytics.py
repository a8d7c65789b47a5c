"""Search analytics: every search recorded, normalized and anonymous, never in the way."""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli_runner import carsearch
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from carsearch.config import Settings
from carsearch.db.engine import create_async_db_engine
from carsearch.search.analytics import SearchEvent, SearchLog
from carsearch.search.schemas import SearchParams


def rows_for(sync_engine: Engine, word: str) -> list[Any]:
    with sync_engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT endpoint, query_text, filters, sort, page, result_count, latency_ms,"
                    " cached FROM search_queries WHERE query_text LIKE :w ORDER BY id"
                ),
                {"w": f"%{word}%"},
            )
        )


async def test_every_search_is_recorded_normalized(
    start_app: Any, search_index: Path, sync_engine: Engine
) -> None:
    word = f"camry{uuid.uuid4().hex[:6]}"
    async with start_app(search_index) as (app, client):
        params = {"q": f"  Toyota  {word.upper()} ", "make": ["Toyota"], "zip": "94103"}
        first = await client.get("/api/v1/listings", params={**params, "sort": "price_asc"})
        again = await client.get("/api/v1/listings", params={**params, "sort": "price_asc"})
        second_page = await client.get("/api/v1/listings", params={**params, "page": 2})
        facets = await client.get("/api/v1/facets", params={"q": word})
        assert {r.status_code for r in (first, again, second_page, facets)} == {200}
        assert app.state.search_log.pending == 4  # buffered, not yet written
        await app.state.search_log.flush()
    rows = rows_for(sync_engine, word)
    assert [(r.endpoint, r.sort, r.page, r.cached) for r in rows] == [
        ("listings", "price_asc", 1, False),
        ("listings", "price_asc", 1, True),
        ("listings", "relevance", 2, False),
        ("facets", None, 1, False),
    ]
    assert rows[0].query_text == f"toyota {word}"
    # Only a three-digit area is kept of the ZIP; defaults (status, radius) are left out.
    assert rows[0].filters == {"make": ["Toyota"], "zip": "941xx"}
    assert rows[0].result_count == first.json()["meta"]["pagination"]["total"]
    assert all(r.latency_ms > 0 for r in rows)


async def test_a_full_buffer_or_a_dead_database_drops_events_quietly(
    server_url: URL,
) -> None:
    event = SearchEvent.of(
        "listings", SearchParams(q="civic"), result_count=3, latency_ms=1.5, cached=False
    )
    missing = server_url.set(database=f"carsearch_missing_{uuid.uuid4().hex[:8]}")
    engine = create_async_db_engine(missing, Settings(env="test"))
    log = SearchLog(engine, capacity=3, batch_size=2)
    try:
        for _ in range(5):
            log.record(event)  # two past capacity: dropped at once
        assert (log.pending, log.dropped) == (3, 2)
        assert await log.flush() == 0  # the database does not exist: dropped, not raised
        assert (log.pending, log.dropped, log.written) == (0, 5, 0)
    finally:
        await engine.dispose()


async def test_the_log_writes_what_is_left_when_stopped(
    async_engine: Any, sync_engine: Engine
) -> None:
    word = f"stop{uuid.uuid4().hex[:6]}"
    log = SearchLog(async_engine, interval_seconds=60)
    log.start()
    log.record(
        SearchEvent.of(
            "listings", SearchParams(q=word), result_count=0, latency_ms=2.0, cached=False
        )
    )
    await log.stop()
    assert log.written == 1
    assert len(rows_for(sync_engine, word)) == 1


def test_stats_searches_reports_popular_and_empty_searches(
    sync_engine: Engine, database_url: URL
) -> None:
    word = f"zzq{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    rows = [
        {"q": f"{word} popular", "n": 30, "at": now},
        {"q": f"{word} nothing", "n": 0, "at": now},
        {"q": f"{word} nothing", "n": 0, "at": now},
        {"q": f"{word} long ago", "n": 0, "at": now - timedelta(days=30)},
    ]
    with sync_engine.begin() as connection:
        for row in rows:
            connection.execute(
                text(
                    "INSERT INTO search_queries (searched_at, endpoint, query_text, filters,"
                    " sort, page, result_count, latency_ms, cached)"
                    " VALUES (:at, 'listings', :q, '{\"make\": [\"Kia\"]}', 'relevance', 1,"
                    " :n, 4.0, false)"
                ),
                row,
            )
    result = run_cli("stats", "searches", "--days", "7", "--limit", "1000", url=database_url)
    assert result.returncode == 0, result.stderr
    popular, _, empty = result.stdout.partition("Searches that found nothing")
    assert f'"{word} popular" make=Kia' in popular
    assert f'"{word} nothing" make=Kia' in empty
    assert f"{word} popular" not in empty
    assert f"{word} long ago" not in result.stdout  # outside the period


def test_stats_searches_refuses_a_bad_period(database_url: URL) -> None:
    result = run_cli("stats", "searches", "--days", "-1", url=database_url)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--days" in result.stderr


def run_cli(*args: str, url: URL) -> subprocess.CompletedProcess[str]:
    return carsearch(*args, env={"DATABASE_URL": url.render_as_string(hide_password=False)})
