"""Where the database is, and the engines and sessions that talk to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from carsearch.config import Settings
from carsearch.db.embedded import ensure_database, start_embedded_server
from carsearch.errors import SetupError

_embedded_server: Any = None


def _with_driver(url: URL) -> URL:
    return url.set(drivername="postgresql+psycopg")


def libpq_dsn(url: URL) -> str:
    """A plain libpq connection string for psycopg (COPY, admin work, procrastinate)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def describe(url: URL) -> str:
    """The URL without its password or driver name, for messages."""
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def resolve_database_url(settings: Settings) -> URL:
    """The SQLAlchemy URL to use; starts the embedded server when no DATABASE_URL is set."""
    global _embedded_server
    if settings.database_url is not None:
        try:
            url = make_url(settings.database_url.replace("postgres://", "postgresql://", 1))
        except Exception:
            raise SetupError("DATABASE_URL is not a valid URL") from None
        url = _with_driver(url)
        check_reachable(url, settings.db_connect_timeout)
        return url
    if _embedded_server is None:
        _embedded_server = start_embedded_server(settings.pg_dir)
    admin_uri = _embedded_server.get_uri()
    ensure_database(admin_uri, settings.embedded_db_name)
    return _with_driver(make_url(admin_uri)).set(database=settings.embedded_db_name)


def check_reachable(url: URL, timeout: int) -> None:
    try:
        with psycopg.connect(libpq_dsn(url), connect_timeout=timeout):
            pass
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0].removeprefix("connection failed: ") if lines else type(exc).__name__
        raise SetupError(f"cannot connect to {describe(url)}: {reason}") from None


def create_sync_engine(url: URL) -> Engine:
    return create_engine(url, pool_pre_ping=True)


def create_async_db_engine(url: URL, settings: Settings) -> AsyncEngine:
    # Imported here, not with this module: the commands import it before they set up the
    # metrics directory, which prometheus-client must see when it is first imported.
    from carsearch.observability.metrics import instrument_pool

    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pool_pre_ping,
        pool_recycle=settings.db_pool_recycle_seconds,
    )
    instrument_pool(engine, capacity=settings.db_pool_size + settings.db_max_overflow)
    return engine


@asynccontextmanager
async def job_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session for one background job, on a connection of its own, closed at the end.

    Not the API's pool (nor counted with it in carsearch_db_pool_connections): a job that
    runs every few minutes needs one connection while it runs, not a pool kept open.
    """
    engine = create_async_engine(resolve_database_url(settings), poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit on success, roll back on any error."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
