"""/readyz: ready only with the database at the latest migration and the search index open;
otherwise 503 with the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app_settings import settings_for_tests
from cli_runner import carsearch
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import URL

from carsearch.app import create_app
from carsearch.db import migrate
from carsearch.db.engine import create_async_db_engine, libpq_dsn
from carsearch.search.store import IndexStore, SyncState, open_index


async def test_ready_names_the_migration_and_the_index(start_app: Any, search_index: Path) -> None:
    async with start_app(search_index) as (_app, http):
        response = await http.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    generation = IndexStore(search_index).current_generation()
    assert generation is not None
    assert body["index"].startswith(generation.name)


async def test_no_index_is_not_ready(start_app: Any, tmp_path: Path) -> None:
    async with start_app(tmp_path / "index") as (_app, http):
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reason": "the search index is not built yet; run `carsearch reindex`",
    }


async def test_an_index_of_an_older_schema_is_not_ready(start_app: Any, tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "index")
    generation = store.new_generation()
    open_index(generation, create=True)
    store.write_sync_state(generation, SyncState(position=None, schema=0))
    store.publish(generation)
    async with start_app(store.root) as (_app, http):
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == (
        "the search index was built by an older CarSearch; run `carsearch reindex`"
    )


async def test_a_database_behind_the_code_is_not_ready_and_one_ahead_is(
    make_database: Callable[..., URL], search_index: Path, tmp_path: Path
) -> None:
    """During a rolling deploy the new release migrates first: old processes stay ready on
    the newer schema; a database that was never migrated to this release is not ready."""
    url = make_database(migrated=True)
    head = migrate.head_revision()
    assert head is not None
    previous = sorted(migrate.known_revisions())[-2]
    engine = create_async_db_engine(url, settings_for_tests())
    application = create_app(settings_for_tests(search_index), engine=engine)
    env = {"DATABASE_URL": libpq_dsn(url), "CARSEARCH_SEARCH_INDEX_DIR": str(tmp_path / "i")}
    try:
        async with (
            application.router.lifespan_context(application),
            AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as http,
        ):
            for revision, status in ((previous, 503), ("9999_a_newer_release", 200)):
                async with engine.begin() as connection:
                    await connection.execute(
                        text("UPDATE alembic_version SET version_num = :v"), {"v": revision}
                    )
                response = await http.get("/readyz")
                assert response.status_code == status, response.text
                if status == 503:
                    assert response.json()["reason"] == (
                        f"database at migration {previous}, code at {head}"
                    )
                    behind = carsearch("reindex", env=env)
                    assert behind.returncode == 1
                    assert "run `carsearch migrate`" in behind.stderr
                else:
                    assert response.json()["migration"] == revision
                    ahead = carsearch("reindex", env=env)
                    assert ahead.returncode == 0, ahead.stderr
                    assert "newer than this release's" in ahead.stderr
    finally:
        await engine.dispose()
