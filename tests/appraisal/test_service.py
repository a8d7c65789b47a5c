"""Appraisals in the database: stored for active listings, refreshed where prices moved,
and followed by the search index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import tantivy
from sqlalchemy.engine import URL

from carsearch.appraisal.service import appraise_market, appraise_stale, stale_groups
from carsearch.db.engine import libpq_dsn
from carsearch.jobs import create_job_app
from carsearch.search.indexer import rebuild_index, sync_index
from carsearch.search.store import IndexReader, IndexStore
from carsearch.seed.service import seed_inventory

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def market(make_database: Callable[..., URL]) -> str:
    url = make_database(migrated=True)
    dsn = libpq_dsn(url)
    seed_inventory(dsn, listings=4_000, seed=5, now=NOW)
    return dsn


def _appraisals(dsn: str) -> dict[int, tuple[str, int | None, datetime, datetime]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT listing_id, rating, estimate, appraised_at, updated_at FROM listing_appraisals"
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}


def test_every_active_listing_is_appraised_once(market: str) -> None:
    progress: list[tuple[int, int]] = []
    report = appraise_market(market, now=NOW, on_progress=lambda d, t: progress.append((d, t)))
    with psycopg.connect(market) as conn:
        active = conn.execute("SELECT count(*) FROM listings WHERE status = 'active'").fetchone()
        stored = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE l.status = 'active'),"
            " count(*) FILTER (WHERE a.rating <> 'none' AND a.estimate IS NULL),"
            " count(*) FILTER (WHERE a.rating = 'none' AND a.reason IS NULL),"
            " count(*) FILTER (WHERE a.difference <> a.price - a.estimate)"
            " FROM listing_appraisals a JOIN listings l ON l.id = a.listing_id"
        ).fetchone()
    assert active is not None
    assert stored is not None
    assert report.listings == active[0] == stored[0] == stored[1]
    assert stored[2:] == (0, 0, 0)  # a rating has an estimate, "none" has a reason
    assert report.changed == report.listings
    assert sum(report.ratings.values()) == report.listings
    assert sum(report.reasons.values()) == report.ratings["none"]
    assert all(report.ratings[tier] > 0 for tier in ("great", "good", "fair", "high"))
    assert progress[0] == (0, active[0])
    assert progress[-1] == (active[0], active[0])

    again = appraise_market(market, now=NOW)
    assert again.changed == 0  # nothing moved: the search sync has nothing to redo
    assert again.ratings == report.ratings


def test_a_price_change_reappraises_its_model_only(market: str) -> None:
    appraise_market(market, now=NOW)
    assert stale_groups(market) == []
    before = _appraisals(market)
    with psycopg.connect(market) as conn:
        row = conn.execute(
            "UPDATE listings SET price = price / 2 WHERE id = (SELECT min(l.id) FROM listings l"
            " JOIN listing_appraisals a ON a.listing_id = l.id WHERE a.rating <> 'none')"
            " RETURNING id, make, model"
        ).fetchone()
    assert row is not None
    listing_id, make, model = row
    assert stale_groups(market) == [(make, model)]

    report = appraise_stale(market, now=NOW + timedelta(hours=1))
    after = _appraisals(market)
    assert report.models == 1
    assert after[listing_id][0] == "great"  # half price is a bargain
    assert after[listing_id][3] > before[listing_id][3]  # what shoppers see changed
    with psycopg.connect(market) as conn:
        same_model = {
            listing
            for (listing,) in conn.execute(
                "SELECT id FROM listings WHERE make = %s AND model = %s", (make, model)
            )
        }
    for other, (_, _, appraised_at, _) in after.items():
        expected = NOW + timedelta(hours=1) if other in same_model else NOW
        assert appraised_at == expected
    assert stale_groups(market) == []


def test_the_search_index_follows_appraisals(market: str, tmp_path: Path) -> None:
    appraise_market(market, now=NOW)
    store = IndexStore(tmp_path / "index")
    rebuild_index(store, market)
    reader = IndexReader(store)

    def indexed_rating(listing_id: int) -> str | None:
        index, searcher, _ = reader.searcher()
        query = tantivy.Query.term_query(index.schema, "id", listing_id)
        hits = searcher.search(query, 1).hits
        rating: str | None = searcher.doc(hits[0][1]).to_dict().get("deal_rating", [None])[0]
        return rating

    first = _appraisals(market)
    # A year on, the same cars are worth less: appraisals change, the listings do not.
    report = appraise_market(market, now=NOW.replace(year=NOW.year + 1))
    assert report.changed > 0
    changed = {i for i, row in _appraisals(market).items() if row[1] != first[i][1]}
    assert changed
    synced = sync_index(store, market)
    assert synced.indexed >= len(changed)
    now_rated = _appraisals(market)
    for listing_id in list(changed)[:20]:
        assert indexed_rating(listing_id) == now_rated[listing_id][0]


def test_removed_listings_drop_their_appraisal_with_them(market: str) -> None:
    appraise_market(market, now=NOW)
    with psycopg.connect(market) as conn:
        conn.execute(
            "DELETE FROM listings WHERE id = (SELECT min(listing_id) FROM listing_appraisals)"
        )
        orphans = conn.execute(
            "SELECT count(*) FROM listing_appraisals a"
            " WHERE NOT EXISTS (SELECT 1 FROM listings l WHERE l.id = a.listing_id)"
        ).fetchone()
    assert orphans == (0,)


def test_jobs_are_scheduled() -> None:
    job_app = create_job_app("postgresql://unused")
    periodic = {
        task.task.name: task.cron for task in job_app.periodic_registry.periodic_tasks.values()
    }
    assert periodic["appraisal:carsearch.appraisal.tasks.appraise_all_listings"] == "30 4 * * *"
    assert (
        periodic["appraisal:carsearch.appraisal.tasks.appraise_changed_listings"] == "*/10 * * * *"
    )
