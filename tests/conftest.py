"""Test harness: a real PostgreSQL for the whole session, a fresh database per run.

With DATABASE_URL set, the tests use that server; otherwise the embedded server under
var/pg. Either way they create their own database, migrate it once, and drop it at the
end, so a developer's data is never touched. Each test runs inside a transaction that
is rolled back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

os.environ.setdefault("CARSEARCH_ENV", "test")

from app_settings import settings_for_tests
from databases import create_database, drop_database

from carsearch.app import create_app
from carsearch.config import Settings
from carsearch.db import migrate
from carsearch.db.engine import (
    create_async_db_engine,
    create_sync_engine,
    libpq_dsn,
    resolve_database_url,
)
from carsearch.deps import get_db_session

TEST_SEED_LISTINGS = 3_000


def make_test_settings(index_dir: Path | None = None) -> Settings:
    return settings_for_tests(index_dir)


@pytest.fixture(scope="session")
def server_url() -> URL:
    """The server's URL (its maintenance database), started if embedded."""
    return resolve_database_url(Settings(env="test"))


@pytest.fixture
def make_database(server_url: URL) -> Iterator[Callable[..., URL]]:
    """A factory of databases, empty or (`migrated=True`) at head, dropped after the test."""
    created: list[URL] = []

    def make(*, migrated: bool = False) -> URL:
        created.append(create_database(server_url, prefix="carsearch_scratch", migrated=migrated))
        return created[-1]

    yield make
    for url in created:
        drop_database(server_url, url)


@pytest.fixture(scope="session")
def database_url(server_url: URL) -> Iterator[URL]:
    url = create_database(server_url)
    yield url
    drop_database(server_url, url)


@pytest.fixture(scope="session")
def sync_engine(database_url: URL) -> Iterator[Engine]:
    engine = create_sync_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def seeded(sync_engine: Engine, database_url: URL) -> int:
    """A seeded, appraised inventory shared by read-only tests; returns the listing count."""
    from carsearch.appraisal.service import appraise_market
    from carsearch.seed.service import seed_inventory

    seed_inventory(libpq_dsn(database_url), listings=TEST_SEED_LISTINGS, seed=7)
    appraise_market(libpq_dsn(database_url))
    return TEST_SEED_LISTINGS


@pytest.fixture(scope="session")
def search_index(seeded: int, database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The search index of the seeded inventory; returns its directory."""
    from carsearch.search.indexer import rebuild_index
    from carsearch.search.store import IndexStore

    root = tmp_path_factory.mktemp("index")
    rebuild_index(IndexStore(root), libpq_dsn(database_url))
    return root


@pytest.fixture(scope="session")
async def async_engine(sync_engine: Engine, database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_async_db_engine(database_url, make_test_settings())
    yield engine
    await engine.dispose()


@pytest.fixture
async def db_connection(async_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with async_engine.connect() as connection:
        transaction = await connection.begin()
        yield connection
        await transaction.rollback()


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    # Commits inside the code under test release savepoints; the outer transaction
    # is rolled back after the test.
    session = AsyncSession(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield session
    await session.close()


@pytest.fixture
async def app(
    async_engine: AsyncEngine, db_session: AsyncSession, search_index: Path
) -> AsyncIterator[FastAPI]:
    """The app on the seeded index, its lifespan running; requests share the test's session."""
    application = create_app(make_test_settings(search_index), engine=async_engine)

    async def session_override() -> AsyncIterator[AsyncSession]:
        yield db_session
        await db_session.commit()

    application.dependency_overrides[get_db_session] = session_override
    async with application.router.lifespan_context(application):
        yield application


AppStarter = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, AsyncClient]]]


@pytest.fixture
def start_app(async_engine: AsyncEngine) -> AppStarter:
    """Starts an app of its own on `index_dir` with settings overridden; no shared session."""

    @asynccontextmanager
    async def start(
        index_dir: Path, **overrides: Any
    ) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
        settings = make_test_settings(index_dir).model_copy(update=overrides)
        application = create_app(settings, engine=async_engine)
        async with (
            application.router.lifespan_context(application),
            AsyncClient(transport=ASGITransport(app=application), base_url="http://t") as http,
        ):
            yield application, http

    return start


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as http:
        yield http
