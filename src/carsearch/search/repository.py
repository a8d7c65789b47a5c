"""All SQL of search: listing rows to index, how far behind the index is, search analytics."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from carsearch.models.analytics import SearchQuery
from carsearch.search.documents import ListingRow

_SELECT_ROWS = """
SELECT l.id, l.vin, l.status, l.condition, l.year, l.make, l.model, l.trim, l.body_style,
       l.drivetrain, l.fuel_type, l.transmission, l.exterior_color, l.interior_color,
       l.mileage, l.price, l.dealer_id, l.images, l.features, l.description,
       l.first_seen_at, l.sold_at,
       GREATEST(l.updated_at, d.updated_at, a.updated_at) AS updated_at,
       d.name AS dealer_name, d.city AS dealer_city, d.state AS dealer_state,
       d.latitude AS dealer_latitude, d.longitude AS dealer_longitude,
       change.amount AS last_price_change, change.observed_at AS last_price_change_at,
       a.rating AS deal_rating, a.estimate AS deal_estimate, a.percent AS deal_percent
FROM listings l
LEFT JOIN dealers d ON d.id = l.dealer_id
LEFT JOIN listing_appraisals a ON a.listing_id = l.id
LEFT JOIN LATERAL (
    SELECT h.price - lag(h.price) OVER (ORDER BY h.observed_at, h.id) AS amount, h.observed_at
    FROM listing_price_history h
    WHERE h.listing_id = l.id
    ORDER BY h.observed_at DESC, h.id DESC
    LIMIT 1
) change ON change.amount IS NOT NULL
"""


def stream_all_listings(dsn: str, batch_size: int = 5_000) -> Iterator[ListingRow]:
    """Every listing, read through a server-side cursor (constant memory at any size)."""
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor(name="search_rebuild", row_factory=class_row(ListingRow)) as cursor,
    ):
        cursor.itersize = batch_size
        cursor.execute(_SELECT_ROWS)
        yield from cursor


def count_listings(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM listings").fetchone()
    return int(row[0]) if row else 0


_CHANGED_IDS = """
    SELECT id FROM listings WHERE updated_at > %(since)s
    UNION
    SELECT l2.id FROM listings l2 JOIN dealers d2 ON d2.id = l2.dealer_id
    WHERE d2.updated_at > %(since)s
    UNION
    SELECT listing_id FROM listing_appraisals WHERE updated_at > %(since)s
"""


def listings_changed_since(conn: psycopg.Connection, since: datetime) -> list[ListingRow]:
    """Listings whose row, dealer's row or appraisal changed after `since`."""
    with conn.cursor(row_factory=class_row(ListingRow)) as cursor:
        cursor.execute(
            _SELECT_ROWS + f" WHERE l.id IN ({_CHANGED_IDS}) ORDER BY updated_at",
            {"since": since},
        )
        return cursor.fetchall()


def changes_since(conn: psycopg.Connection, since: datetime) -> list[tuple[int, datetime]]:
    """(id, updated_at) of the listings `listings_changed_since` would return: what a
    follower checks against what it already indexed before reading whole rows."""
    rows = conn.execute(
        "SELECT l.id, GREATEST(l.updated_at, d.updated_at, a.updated_at) FROM listings l"
        " LEFT JOIN dealers d ON d.id = l.dealer_id"
        " LEFT JOIN listing_appraisals a ON a.listing_id = l.id"
        f" WHERE l.id IN ({_CHANGED_IDS})",
        {"since": since},
    ).fetchall()
    return [(listing_id, updated_at) for listing_id, updated_at in rows]


def listings_by_ids(conn: psycopg.Connection, ids: list[int]) -> list[ListingRow]:
    with conn.cursor(row_factory=class_row(ListingRow)) as cursor:
        cursor.execute(
            _SELECT_ROWS + " WHERE l.id = ANY(%(ids)s) ORDER BY updated_at", {"ids": ids}
        )
        return cursor.fetchall()


def database_identity(conn: psycopg.Connection) -> str:
    """This database, told apart from others without special privileges: its name and
    object id, and the server's address (none for a local socket)."""
    row = conn.execute(
        "SELECT current_database() || '/' || d.oid::text || '@'"
        " || coalesce(host(inet_server_addr()), 'socket') || ':'"
        " || coalesce(inet_server_port()::text, '')"
        " FROM pg_database d WHERE d.datname = current_database()"
    ).fetchone()
    assert row is not None
    return str(row[0])


def latest_change(conn: psycopg.Connection) -> datetime | None:
    row = conn.execute(
        "SELECT GREATEST((SELECT max(updated_at) FROM listings),"
        " (SELECT max(updated_at) FROM dealers),"
        " (SELECT max(updated_at) FROM listing_appraisals))"
    ).fetchone()
    return row[0] if row else None


# The oldest change the index has not seen yet; NULL when it is up to date. A null
# position (never synced) makes every row a waiting change.
OLDEST_CHANGE_SQL = """
SELECT LEAST(
    (SELECT min(updated_at) FROM listings
     WHERE CAST(%(p)s AS timestamptz) IS NULL OR updated_at > CAST(%(p)s AS timestamptz)),
    (SELECT min(updated_at) FROM dealers
     WHERE CAST(%(p)s AS timestamptz) IS NOT NULL AND updated_at > CAST(%(p)s AS timestamptz)),
    (SELECT min(updated_at) FROM listing_appraisals
     WHERE CAST(%(p)s AS timestamptz) IS NOT NULL AND updated_at > CAST(%(p)s AS timestamptz)))
"""


def oldest_change_after(conn: psycopg.Connection, position: datetime | None) -> datetime | None:
    """The oldest change the index has not seen yet (None: it is up to date)."""
    row = conn.execute(OLDEST_CHANGE_SQL, {"p": position}).fetchone()
    return row[0] if row else None


async def oldest_change_after_async(
    session: AsyncSession, position: datetime | None
) -> datetime | None:
    statement = text(OLDEST_CHANGE_SQL.replace("%(p)s", ":p"))
    value: datetime | None = (await session.execute(statement, {"p": position})).scalar()
    return value


async def insert_search_queries(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(SearchQuery), rows)


def delete_search_queries_before(conn: psycopg.Connection, before: datetime) -> int:
    cursor = conn.execute("DELETE FROM search_queries WHERE searched_at < %s", (before,))
    return cursor.rowcount


_POPULAR_SQL = """
SELECT query_text, filters, count(*) AS searches, round(avg(result_count)) AS avg_results,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS median_ms
FROM search_queries
WHERE searched_at >= %(since)s AND page = 1 AND endpoint = 'listings' {zero}
GROUP BY query_text, filters
ORDER BY searches DESC, query_text NULLS FIRST
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class QueryStat:
    query_text: str | None
    filters: dict[str, Any]
    searches: int
    avg_results: int
    median_ms: float


def popular_searches(
    conn: psycopg.Connection, since: datetime, limit: int, *, zero_results: bool = False
) -> list[QueryStat]:
    """The most frequent first-page searches since `since` (only those that found nothing)."""
    statement = _POPULAR_SQL.format(zero="AND result_count = 0" if zero_results else "")
    rows = conn.execute(statement, {"since": since, "limit": limit}).fetchall()
    return [
        QueryStat(
            query_text=row[0],
            filters=row[1],
            searches=int(row[2]),
            avg_results=int(row[3]),
            median_ms=float(row[4]),
        )
        for row in rows
    ]


def search_totals(conn: psycopg.Connection, since: datetime) -> tuple[int, int]:
    """(searches, of which found nothing) since `since`, first pages only."""
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE result_count = 0) FROM search_queries"
        " WHERE searched_at >= %(since)s AND page = 1 AND endpoint = 'listings'",
        {"since": since},
    ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
