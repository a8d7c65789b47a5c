"""The response cache: normalized keys, index-version invalidation, Redis and its absence."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from redis_for_tests import redis_url
from sqlalchemy.engine import URL

from carsearch.db.engine import libpq_dsn
from carsearch.search.cache import MemoryCache, RedisCache, cache_key
from carsearch.search.indexer import rebuild_index
from carsearch.search.schemas import SearchParams
from carsearch.search.store import IndexStore


def test_equal_searches_share_a_key() -> None:
    first = SearchParams(make=["Toyota", "Honda"], q="  Toyota   CAMRY ", year_min=2018)
    second = SearchParams(make=["Honda", "Toyota", "Honda"], q="toyota camry", year_min=2018)
    other = SearchParams(make=["Honda", "Toyota"], q="toyota camry", year_min=2019)
    assert cache_key("listings", first.normalized()) == cache_key("listings", second.normalized())
    assert cache_key("listings", first.normalized()) != cache_key("listings", other.normalized())
    assert cache_key("listings", first.normalized()) != cache_key("facets", first.normalized())
    # Defaults are not part of the key: page=1 is the same search as no page at all.
    assert SearchParams(page=1).normalized() == SearchParams().normalized() == {}


async def test_memory_cache_counts_evicts_expires_and_follows_the_version() -> None:
    cache = MemoryCache(max_entries=2, ttl_seconds=0.2)
    assert await cache.get("v1", "a") is None
    await cache.set("v1", "a", b"A")
    await cache.set("v1", "b", b"B")
    assert await cache.get("v1", "a") == b"A"  # a is now the most recent
    await cache.set("v1", "c", b"C")  # evicts b, the least recently used
    assert await cache.get("v1", "b") is None
    assert await cache.get("v1", "c") == b"C"
    assert await cache.get("v2", "a") is None  # a new index version drops everything
    assert len(cache) == 0
    await cache.set("v2", "a", b"A2")
    await asyncio.sleep(0.25)
    assert await cache.get("v2", "a") is None  # expired
    assert cache.stats.as_dict() == {"hits": 2, "misses": 4, "errors": 0}


async def test_redis_cache_round_trip() -> None:
    cache = RedisCache(redis_url(), ttl_seconds=5)
    version = f"test-{uuid.uuid4().hex}"
    try:
        assert await cache.get(version, "k") is None
        await cache.set(version, "k", b'7\n{"data": []}')
        assert await cache.get(version, "k") == b'7\n{"data": []}'
        assert await cache.get(f"{version}-next", "k") is None  # another index version
        assert cache.stats.as_dict() == {"hits": 1, "misses": 2, "errors": 0}
    finally:
        await cache.close()


async def test_unreachable_redis_costs_the_cache_not_the_search(
    start_app: Any, search_index: Path
) -> None:
    dead = "redis://127.0.0.1:1/0"
    async with start_app(search_index, redis_url=dead, search_analytics=False) as (app, client):
        for _ in range(2):
            response = await client.get("/api/v1/listings", params={"make": "Toyota"})
            assert response.status_code == 200
            assert response.headers["x-cache"] == "miss"
        assert app.state.search_cache.stats.errors >= 2


async def test_repeated_search_is_a_hit_until_the_index_changes(
    start_app: Any, database_url: URL, tmp_path: Path, seeded: int
) -> None:
    store = IndexStore(tmp_path / "index")
    rebuild_index(store, libpq_dsn(database_url))
    async with start_app(store.root) as (_app, client):
        url = "/api/v1/listings?make=Honda&make=Toyota&sort=price_asc&facets=make"
        same = "/api/v1/listings?sort=price_asc&make=Toyota&make=Honda&facets=make"
        first = await client.get(url)
        second = await client.get(same)
        assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
        assert first.json() == second.json()
        assert (await client.get("/api/v1/facets?make=Honda")).headers["x-cache"] == "miss"
        assert (await client.get("/api/v1/filters")).headers["x-cache"] == "miss"
        assert (await client.get("/api/v1/filters")).headers["x-cache"] == "hit"

        rebuild_index(store, libpq_dsn(database_url))  # a new generation: a new version
        third = await client.get(url)
        assert third.headers["x-cache"] == "miss"
        assert third.json()["meta"]["pagination"] == first.json()["meta"]["pagination"]

        status = (await client.get("/api/v1/search/status")).json()["data"]
        assert status["cache"] == {"backend": "memory", "hits": 2, "misses": 4, "errors": 0}
        assert status["index"]["documents"] == seeded
        assert status["index"]["lag_seconds"] == 0


async def test_errors_are_never_cached(client: Any) -> None:
    for _ in range(2):
        response = await client.get("/api/v1/listings", params={"zip": "00000"})
        assert response.status_code == 400
        assert "x-cache" not in response.headers


async def test_listing_pages_are_cached_until_the_index_changes(
    start_app: Any, database_url: URL, tmp_path: Path, sync_engine: Any
) -> None:
    from sqlalchemy import text

    with sync_engine.connect() as connection:
        vin = connection.execute(text("SELECT vin FROM listings ORDER BY id LIMIT 1")).scalar_one()
    store = IndexStore(tmp_path / "index")
    rebuild_index(store, libpq_dsn(database_url))
    async with start_app(store.root) as (_app, client):
        for path in (f"/api/v1/listings/{vin}", f"/api/v1/listings/{vin.lower()}/history"):
            first, second = await client.get(path), await client.get(path)
            assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
            assert first.json() == second.json()
        rebuild_index(store, libpq_dsn(database_url))
        assert (await client.get(f"/api/v1/listings/{vin}")).headers["x-cache"] == "miss"
        # Bad and unknown VINs are answered, never cached.
        assert (await client.get("/api/v1/listings/ABC")).status_code == 422
        unknown = "1HGCM82633A00435Z"
        for _ in range(2):
            response = await client.get(f"/api/v1/listings/{unknown}")
            assert response.status_code in (404, 422)
            assert "x-cache" not in response.headers
