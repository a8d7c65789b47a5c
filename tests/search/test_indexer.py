"""The index follows the database: rebuild and swap, incremental sync, one writer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import tantivy
from sqlalchemy.engine import URL

from carsearch.db.engine import libpq_dsn
from carsearch.search import tasks as search_tasks
from carsearch.search.indexer import (
    SyncMemory,
    current_lag_seconds,
    rebuild_index,
    sync_index,
)
from carsearch.search.repository import database_identity
from carsearch.search.store import (
    IndexMissing,
    IndexOfAnotherDatabase,
    IndexReader,
    IndexStore,
    WriterBusy,
)
from carsearch.search.tasks import follow_database
from carsearch.seed.service import seed_inventory


@pytest.fixture
def small_inventory(make_database: Callable[..., URL]) -> str:
    url = make_database(migrated=True)
    dsn = libpq_dsn(url)
    seed_inventory(dsn, listings=300, seed=9)
    return dsn


def _price_of(reader: IndexReader, vin: str) -> int | None:
    index, searcher, _ = reader.searcher()
    hits = searcher.search(tantivy.Query.term_query(index.schema, "vin", vin), 1).hits
    assert len(hits) == 1
    price: int | None = searcher.doc(hits[0][1]).to_dict().get("price", [None])[0]
    return price


def test_sync_follows_changes_and_reports_lag(small_inventory: str, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    report = rebuild_index(store, small_inventory)
    assert report.documents == 300
    reader = IndexReader(store)
    assert reader.searcher()[1].num_docs == 300
    assert current_lag_seconds(store, small_inventory) == 0

    with psycopg.connect(small_inventory) as conn:
        changed = conn.execute(
            "UPDATE listings SET price = price - 777 WHERE id = (SELECT min(id) FROM listings"
            " WHERE price IS NOT NULL) RETURNING vin, price"
        ).fetchone()
    assert changed is not None
    vin, price = changed
    assert current_lag_seconds(store, small_inventory) > 0  # a change is waiting
    assert _price_of(reader, vin) == price + 777  # not yet searchable

    synced = sync_index(store, small_inventory)
    assert synced.indexed >= 1
    assert synced.lag_seconds == 0
    assert _price_of(reader, vin) == price  # the reader saw the commit without a restart
    assert reader.searcher()[1].num_docs == 300  # replaced, not duplicated

    # A second pass re-reads only the overlap window: nothing new, nothing lost.
    assert sync_index(store, small_inventory).lag_seconds == 0
    assert reader.searcher()[1].num_docs == 300

    # A follower remembers what it indexed: the overlap's rows are read again, not indexed.
    memory = SyncMemory()
    assert sync_index(store, small_inventory, memory).indexed >= 1
    assert sync_index(store, small_inventory, memory).indexed == 0
    with psycopg.connect(small_inventory) as conn:
        conn.execute("UPDATE listings SET price = price + 1 WHERE vin = %s", (vin,))
    assert sync_index(store, small_inventory, memory).indexed == 1  # only the new change
    assert _price_of(reader, vin) == price + 1
    # A rebuild is a new generation: the memory starts over instead of trusting it.
    rebuild_index(store, small_inventory)
    assert sync_index(store, small_inventory, memory).indexed >= 1


def test_dealer_changes_reach_their_listings(small_inventory: str, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    rebuild_index(store, small_inventory)
    with psycopg.connect(small_inventory) as conn:
        conn.execute("UPDATE dealers SET name = 'Renamed Motors' WHERE id = 1")
        expected = conn.execute("SELECT count(*) FROM listings WHERE dealer_id = 1").fetchone()
    assert expected is not None
    sync_index(store, small_inventory)
    index, searcher, _ = IndexReader(store).searcher()
    query = tantivy.Query.term_query(index.schema, "dealer_id", 1)
    hits = searcher.search(query, 1000).hits
    assert len(hits) == expected[0]
    assert {searcher.doc(a).to_dict()["dealer_name"][0] for _, a in hits} <= {"Renamed Motors"}


def test_rebuild_swaps_generations_under_a_live_reader(
    small_inventory: str, tmp_path: Path
) -> None:
    store = IndexStore(tmp_path / "index")
    reader = IndexReader(store)
    with pytest.raises(IndexMissing):
        reader.searcher()
    rebuild_index(store, small_inventory)
    first_version = reader.searcher()[2]
    first_generation = store.current_generation()
    rebuild_index(store, small_inventory)
    second_version = reader.searcher()[2]
    assert second_version != first_version
    assert first_generation is not None
    assert not first_generation.exists()  # old generations are cleaned up
    assert reader.searcher()[1].num_docs == 300


def test_one_writer_at_a_time(small_inventory: str, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    rebuild_index(store, small_inventory)
    with store.writer_lock():
        with pytest.raises(WriterBusy):
            sync_index(store, small_inventory)
        with pytest.raises(WriterBusy):
            rebuild_index(store, small_inventory)
    assert sync_index(store, small_inventory).lag_seconds == 0


def test_an_index_follows_only_the_database_it_was_built_from(
    small_inventory: str, make_database: Callable[..., URL], tmp_path: Path
) -> None:
    store = IndexStore(tmp_path / "index")
    rebuild_index(store, small_inventory)
    with psycopg.connect(small_inventory) as conn:
        built_from = database_identity(conn)
    assert store.exists(built_from)
    other_url = make_database(migrated=True)
    other = libpq_dsn(other_url)
    with psycopg.connect(other) as conn:
        assert database_identity(conn) != built_from
        assert not store.exists(database_identity(conn))  # `carsearch run` rebuilds it
    with pytest.raises(IndexOfAnotherDatabase):
        sync_index(store, other)


async def test_every_worker_keeps_its_own_index_following_the_database(
    small_inventory: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two machines, two indexes: each worker's loop syncs its own, with no job queued."""
    stores = [IndexStore(tmp_path / "machine-1"), IndexStore(tmp_path / "machine-2")]
    rebuild_index(stores[0], small_inventory)
    followers = [
        asyncio.create_task(follow_database(store, small_inventory, interval=0.05))
        for store in stores
    ]
    try:
        await asyncio.sleep(0.3)
        # The second machine has no index yet: said once, not on every tick.
        skipped = [r for r in caplog.records if "no index yet" in r.getMessage()]
        assert len(skipped) == 1
        rebuild_index(stores[1], small_inventory)
        with psycopg.connect(small_inventory) as conn:
            changed = conn.execute(
                "UPDATE listings SET price = 12345 WHERE id = (SELECT min(id) FROM listings)"
                " RETURNING vin"
            ).fetchone()
        assert changed is not None
        readers = [IndexReader(store) for store in stores]
        for _ in range(100):
            if all(_price_of(reader, changed[0]) == 12345 for reader in readers):
                break
            await asyncio.sleep(0.05)
        assert [_price_of(reader, changed[0]) for reader in readers] == [12345, 12345]
    finally:
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)


async def test_the_sync_loop_outlives_an_unexpected_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def flaky(store: IndexStore, dsn: str, memory: object = None) -> str | None:
        calls.append(1)
        if len(calls) <= 2:
            raise ValueError("sync.json is not JSON")
        return None

    monkeypatch.setattr(search_tasks, "sync_once", flaky)
    caplog.set_level(logging.INFO, logger=search_tasks.logger.name)
    follower = asyncio.create_task(
        follow_database(IndexStore(tmp_path), "postgresql://unused", interval=0.01)
    )
    for _ in range(200):
        if len(calls) >= 4:
            break
        await asyncio.sleep(0.01)
    follower.cancel()
    await asyncio.gather(follower, return_exceptions=True)
    assert len(calls) >= 4  # still running after the failures
    messages = [r.getMessage() for r in caplog.records if "search sync" in r.getMessage()]
    assert messages[:2] == [
        "search sync skipped: ValueError: sync.json is not JSON",  # once, not per tick
        "search sync resumed",
    ]
