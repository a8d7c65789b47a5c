"""All SQL of observability: what the deployment-wide metrics read from PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from carsearch.observability.metrics import DatabaseState
from carsearch.search.repository import oldest_change_after_async

QUEUE_STATUSES = ("todo", "doing")

# procrastinate's partial index on (id, lock) WHERE status IN ('todo', 'doing') serves
# this, so the finished jobs kept for a week are never read.
_QUEUE_DEPTH_SQL = text(
    "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs"
    " WHERE status IN ('todo', 'doing') GROUP BY queue_name, status"
)
# Statistics PostgreSQL keeps anyway: no table is counted row by row.
_TABLE_ROWS_SQL = text(
    "SELECT relname, n_live_tup FROM pg_stat_user_tables"
    " WHERE schemaname = current_schema() AND relname IN :tables"
).bindparams(bindparam("tables", expanding=True))
_BLOCKED_SQL = text("SELECT source, status = 'blocked' FROM source_states")
# When a source last scraped successfully; for one that has runs but no success yet, when
# it first ran: "no success since then" is what the stale-scrape alert needs to know.
_LAST_SUCCESS_SQL = text(
    "SELECT source, coalesce(max(finished_at) FILTER (WHERE status = 'succeeded'),"
    " min(started_at)) FROM scrape_runs GROUP BY source"
)


async def read_database_state(
    connection: AsyncConnection,
    *,
    tables: Collection[str],
    queues: Iterable[str],
    sources: Iterable[str],
    index_position: datetime | None,
    index_exists: bool,
) -> DatabaseState:
    """One consistent read of the deployment-wide series.

    Every known queue and source gets a value, 0 when the database has nothing for it, so
    alerts and dashboards see a series before the first job or run. The sync lag is only
    read while an index exists: without one, searches fail and /readyz says so.
    """
    depth = {(queue, status): 0 for queue in queues for status in QUEUE_STATUSES}
    for queue, status, count in await connection.execute(_QUEUE_DEPTH_SQL):
        depth[(queue, status)] = count
    rows = {
        table: count
        for table, count in await connection.execute(_TABLE_ROWS_SQL, {"tables": list(tables)})
    }
    blocked = dict.fromkeys(sources, False)
    last_success: dict[str, float] = {}
    for source, is_blocked in await connection.execute(_BLOCKED_SQL):
        blocked[source] = bool(is_blocked)
    for source, succeeded_at in await connection.execute(_LAST_SUCCESS_SQL):
        last_success[source] = succeeded_at.timestamp()
    lag = None
    if index_exists:
        async with AsyncSession(bind=connection) as session:
            oldest = await oldest_change_after_async(session, index_position)
        lag = 0.0 if oldest is None else max(0.0, (await _now(connection) - oldest).total_seconds())
    return DatabaseState(
        queue_depth=depth,
        table_rows=rows,
        sync_lag_seconds=lag,
        sources_blocked=blocked,
        last_success=last_success,
    )


async def _now(connection: AsyncConnection) -> datetime:
    # The database's clock, the one updated_at was written with.
    value: datetime = (await connection.execute(text("SELECT now()"))).scalar_one()
    return value
