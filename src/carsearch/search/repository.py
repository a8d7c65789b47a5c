"""All SQL the search index needs: listing rows to index, and how far behind it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from carsearch.search.documents import ListingRow

_SELECT_ROWS = """
SELECT l.id, l.vin, l.status, l.condition, l.year, l.make, l.model, l.trim, l.body_style,
       l.drivetrain, l.fuel_type, l.transmission, l.exterior_color, l.interior_color,
       l.mileage, l.price, l.dealer_id, l.images, l.features, l.description,
       l.first_seen_at, l.sold_at, GREATEST(l.updated_at, d.updated_at) AS updated_at,
       d.name AS dealer_name, d.city AS dealer_city, d.state AS dealer_state,
       d.latitude AS dealer_latitude, d.longitude AS dealer_longitude,
       change.amount AS last_price_change, change.observed_at AS last_price_change_at
FROM listings l
LEFT JOIN dealers d ON d.id = l.dealer_id
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


def listings_changed_since(conn: psycopg.Connection, since: datetime) -> list[ListingRow]:
    """Listings whose row or whose dealer's row changed after `since`."""
    with conn.cursor(row_factory=class_row(ListingRow)) as cursor:
        cursor.execute(
            _SELECT_ROWS
            + """
            WHERE l.id IN (
                SELECT id FROM listings WHERE updated_at > %(since)s
                UNION
                SELECT l2.id FROM listings l2 JOIN dealers d2 ON d2.id = l2.dealer_id
                WHERE d2.updated_at > %(since)s
            )
            ORDER BY updated_at
            """,
            {"since": since},
        )
        return cursor.fetchall()


def latest_change(conn: psycopg.Connection) -> datetime | None:
    row = conn.execute(
        "SELECT GREATEST((SELECT max(updated_at) FROM listings),"
        " (SELECT max(updated_at) FROM dealers))"
    ).fetchone()
    return row[0] if row else None


def oldest_change_after(conn: psycopg.Connection, position: datetime | None) -> datetime | None:
    """The oldest change the index has not seen yet (None: it is up to date)."""
    if position is None:
        row = conn.execute("SELECT min(updated_at) FROM listings").fetchone()
    else:
        row = conn.execute(
            "SELECT LEAST((SELECT min(updated_at) FROM listings WHERE updated_at > %(p)s),"
            " (SELECT min(updated_at) FROM dealers WHERE updated_at > %(p)s))",
            {"p": position},
        ).fetchone()
    return row[0] if row else None
