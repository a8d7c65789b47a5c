from __future__ import annotations

import asyncio
import functools
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from carsearch.db.migrate import head_revision, schema_state
from carsearch.errors import ServiceUnavailable
from carsearch.observability.metrics import DatabaseState, exposition
from carsearch.observability.repository import read_database_state
from carsearch.search.service import SearchService
from carsearch.search.store import IndexMissing

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

# A scrape must stay fast when the database is slow or down: its series are left out then.
# The server cancels a slow query first (a clean error); the client gives up on a server
# that does not answer at all.
DATABASE_STATEMENT_MS = 2_000
DATABASE_READ_SECONDS = 3.0


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers, its schema is at this release's latest migration
    (or a newer release's, during a rolling deploy), and the search index is open."""
    try:
        async with request.app.state.engine.connect() as connection:
            current = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except (SQLAlchemyError, OSError):
        return _not_ready("database unreachable")
    if schema_state(current) == "behind":
        return _not_ready(f"database at migration {current}, code at {head_revision()}")
    search: SearchService = request.app.state.search_service
    try:
        _index, _searcher, version = await asyncio.to_thread(search.open)
    except ServiceUnavailable as exc:  # missing, or of an older schema
        return _not_ready(exc.message)
    except Exception as exc:  # whatever tantivy raises for an index it cannot read
        logger.warning("search index unreadable: %s", _first_line(exc))
        return _not_ready("the search index is unreadable; run `carsearch reindex`")
    return JSONResponse({"status": "ok", "migration": current, "index": version})


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of every process of this deployment, and of its database."""
    database = await _database_state(request.app.state.engine, request.app.state.search_service)
    body = await asyncio.to_thread(exposition, database)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _database_state(engine: AsyncEngine, search: SearchService) -> DatabaseState | None:
    store = search.reader.store
    try:
        position = await asyncio.to_thread(lambda: store.read_sync_state().position)
        index_exists = True
    except (IndexMissing, OSError, ValueError):
        position, index_exists = None, False
    try:
        async with asyncio.timeout(DATABASE_READ_SECONDS), engine.connect() as connection:
            await connection.execute(text(f"SET LOCAL statement_timeout = {DATABASE_STATEMENT_MS}"))
            return await read_database_state(
                connection,
                tables=_tables(),
                queues=_queues(),
                sources=_sources(),
                index_position=position,
                index_exists=index_exists,
            )
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        logger.warning("metrics: database series left out: %s", _first_line(exc))
        return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@functools.cache
def _tables() -> tuple[str, ...]:
    import carsearch.models  # noqa: F401  (every table joins the metadata)
    from carsearch.db.base import Base

    return tuple(sorted(Base.metadata.tables))


@functools.cache
def _queues() -> frozenset[str]:
    # The job app gathers every domain's tasks; loaded when first needed, not with the API.
    from carsearch.jobs import known_queues

    return known_queues()


@functools.cache
def _sources() -> tuple[str, ...]:
    from carsearch.ingest.carscom import SOURCE

    return (SOURCE,)
