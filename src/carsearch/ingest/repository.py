"""All SQL of ingestion: dealers, listings, sources, prices, runs, source states, VINs.

Synchronous psycopg: ingestion runs in a worker thread or a command, a page at a time,
and batches its statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from carsearch.dealers.geo import MILES_TO_METERS


@dataclass(frozen=True, slots=True)
class StoredListing:
    id: int
    vin: str
    price: int | None
    mileage: int | None
    status: str
    updated_at: datetime


def reference_models(conn: psycopg.Connection) -> list[tuple[str, list[str], str, list[str], str]]:
    """(make, make aliases, model, model aliases, body style) of the reference tables."""
    rows = conn.execute(
        """
        SELECT m.name, m.aliases, mo.name, mo.aliases, mo.body_style
        FROM makes m JOIN models mo ON mo.make_id = m.id
        ORDER BY m.name, mo.name
        """
    ).fetchall()
    return [(row[0], list(row[1] or ()), row[2], list(row[3] or ()), row[4]) for row in rows]


def upsert_dealers(conn: psycopg.Connection, dealers: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Dealers by (source, source_dealer_id); known values are never erased by a page that
    lacks them. Returns {source_dealer_id: id}."""
    if not dealers:
        return {}
    with conn.cursor() as cursor:
        # One pipelined batch; unchanged dealers are not touched (their updated_at would
        # send all their listings back through the search sync).
        cursor.executemany(
            """
                INSERT INTO dealers (source, source_dealer_id, name, address, city, state, zip,
                                     latitude, longitude, phone, website, rating, review_count)
                VALUES (%(source)s, %(source_dealer_id)s, %(name)s, %(address)s, %(city)s,
                        %(state)s, %(zip)s, %(latitude)s, %(longitude)s, %(phone)s,
                        %(website)s, %(rating)s, %(review_count)s)
                ON CONFLICT (source, source_dealer_id) DO UPDATE SET
                    name = EXCLUDED.name,
                    address = coalesce(EXCLUDED.address, dealers.address),
                    city = coalesce(EXCLUDED.city, dealers.city),
                    state = coalesce(EXCLUDED.state, dealers.state),
                    zip = coalesce(EXCLUDED.zip, dealers.zip),
                    latitude = coalesce(EXCLUDED.latitude, dealers.latitude),
                    longitude = coalesce(EXCLUDED.longitude, dealers.longitude),
                    phone = coalesce(EXCLUDED.phone, dealers.phone),
                    website = coalesce(EXCLUDED.website, dealers.website),
                    rating = coalesce(EXCLUDED.rating, dealers.rating),
                    review_count = coalesce(EXCLUDED.review_count, dealers.review_count)
                WHERE (dealers.name, dealers.address, dealers.city, dealers.state, dealers.zip,
                       dealers.phone, dealers.website, dealers.rating, dealers.review_count)
                      IS DISTINCT FROM
                      (EXCLUDED.name, coalesce(EXCLUDED.address, dealers.address),
                       coalesce(EXCLUDED.city, dealers.city),
                       coalesce(EXCLUDED.state, dealers.state),
                       coalesce(EXCLUDED.zip, dealers.zip),
                       coalesce(EXCLUDED.phone, dealers.phone),
                       coalesce(EXCLUDED.website, dealers.website),
                       coalesce(EXCLUDED.rating, dealers.rating),
                       coalesce(EXCLUDED.review_count, dealers.review_count))
                """,
            list(dealers),
        )
        rows = cursor.execute(
            "SELECT source_dealer_id, id FROM dealers"
            " WHERE source = %s AND source_dealer_id = ANY(%s)",
            (dealers[0]["source"], [dealer["source_dealer_id"] for dealer in dealers]),
        ).fetchall()
    return {key: int(dealer_id) for key, dealer_id in rows}


def listings_by_vin(conn: psycopg.Connection, vins: Sequence[str]) -> dict[str, StoredListing]:
    rows = conn.execute(
        "SELECT id, vin, price, mileage, status, updated_at FROM listings"
        " WHERE vin = ANY(%s) FOR UPDATE",
        (list(vins),),
    ).fetchall()
    return {row[1]: StoredListing(*row) for row in rows}


_LISTING_COLUMNS = (
    "vin",
    "url",
    "source",
    "source_listing_id",
    "condition",
    "year",
    "make",
    "model",
    "trim",
    "body_style",
    "drivetrain",
    "fuel_type",
    "transmission",
    "engine",
    "exterior_color",
    "interior_color",
    "mileage",
    "price",
    "msrp",
    "dealer_id",
    "images",
    "features",
    "description",
    "vin_decoded",
)
# What a later sighting may change; a value the page lacks never erases a known one.
# Price and mileage follow every page; the rest follows detail pages, while results pages
# (which carry less: fewer photos, no transmission) only fill what is still unknown, so
# the two kinds of page never undo each other run after run.
_FOLLOWED = ("mileage", "dealer_id", "vin_decoded")
_DESCRIPTIVE = (
    "condition",
    "year",
    "make",
    "model",
    "trim",
    "body_style",
    "drivetrain",
    "fuel_type",
    "transmission",
    "engine",
    "exterior_color",
    "interior_color",
    "msrp",
    "description",
)


def _params(listing: dict[str, Any]) -> dict[str, Any]:
    values = dict(listing)
    values["images"] = Jsonb(list(values["images"]))
    values["features"] = list(values["features"])
    if values.get("vin_decoded") is not None:
        values["vin_decoded"] = Jsonb(values["vin_decoded"])
    return values


def insert_listings(
    conn: psycopg.Connection, listings: Sequence[dict[str, Any]], seen_at: datetime
) -> list[int]:
    """New listings in one pipelined batch; their ids, in order."""
    if not listings:
        return []
    columns = ", ".join(_LISTING_COLUMNS)
    values = ", ".join(f"%({name})s" for name in _LISTING_COLUMNS)
    ids = []
    with conn.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO listings ({columns}, first_seen_at, last_seen_at)"
            f" VALUES ({values}, %(seen_at)s, %(seen_at)s) RETURNING id",
            [{**_params(listing), "seen_at": seen_at} for listing in listings],
            returning=True,
        )
        while True:
            row = cursor.fetchone()
            assert row is not None
            ids.append(int(row[0]))
            if not cursor.nextset():
                break
    return ids


def _update_statement(detail: bool) -> str:
    followed = [f"{name} = coalesce(%({name})s, {name})" for name in _FOLLOWED]
    if detail:
        described = [f"{name} = coalesce(%({name})s, {name})" for name in _DESCRIPTIVE]
        images = "CASE WHEN jsonb_array_length(%(images)s) > 0 THEN %(images)s ELSE images END"
        features = (
            "CASE WHEN cardinality(%(features)s::text[]) > 0"
            " THEN %(features)s::text[] ELSE features END"
        )
    else:
        described = [f"{name} = coalesce({name}, %({name})s)" for name in _DESCRIPTIVE]
        images = "CASE WHEN jsonb_array_length(images) = 0 THEN %(images)s ELSE images END"
        features = "CASE WHEN cardinality(features) = 0 THEN %(features)s::text[] ELSE features END"
    assignments = ", ".join([*followed, *described])
    return f"""
        UPDATE listings SET {assignments},
            price = %(price)s,
            images = {images},
            features = {features},
            status = 'active', sold_at = NULL, last_seen_at = %(seen_at)s
        WHERE id = %(id)s
        RETURNING updated_at
        """


def update_listings(
    conn: psycopg.Connection,
    sightings: Sequence[tuple[StoredListing, dict[str, Any]]],
    seen_at: datetime,
    *,
    detail: bool,
) -> list[bool]:
    """Apply sightings in one pipelined batch; for each, whether anything but the sighting
    time changed (the trigger moves updated_at only then).

    A sold or removed listing seen again is active again. Price follows the page, even to
    null ("call for price").
    """
    if not sightings:
        return []
    changed = []
    with conn.cursor() as cursor:
        cursor.executemany(
            _update_statement(detail),
            [
                {**_params(listing), "seen_at": seen_at, "id": before.id}
                for before, listing in sightings
            ],
            returning=True,
        )
        for before, _listing in sightings:
            row = cursor.fetchone()
            assert row is not None
            changed.append(bool(row[0] != before.updated_at))
            cursor.nextset()
    return changed


def record_prices(
    conn: psycopg.Connection, prices: Sequence[tuple[int, int, int | None, datetime]]
) -> None:
    """(listing id, price, mileage, observed at) rows of price history, in one statement."""
    if not prices:
        return
    columns = [list(column) for column in zip(*prices, strict=True)]
    listing_ids, amounts, mileages, observed = columns
    conn.execute(
        "INSERT INTO listing_price_history (listing_id, price, mileage, observed_at)"
        " SELECT * FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::timestamptz[])",
        (listing_ids, amounts, mileages, observed),
    )


def upsert_sources(conn: psycopg.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Every place a listing was seen, in one statement (one source per call)."""
    if not rows:
        return
    conn.execute(
        """
        INSERT INTO listing_sources (listing_id, source, source_listing_id, url, dealer_id,
                                     first_seen_at, last_seen_at)
        SELECT listing_id, %(source)s, source_listing_id, url, dealer_id, %(seen_at)s,
               %(seen_at)s
        FROM unnest(%(listing_ids)s::bigint[], %(source_listing_ids)s::text[], %(urls)s::text[],
                    %(dealer_ids)s::bigint[]) AS s(listing_id, source_listing_id, url, dealer_id)
        ON CONFLICT (source, source_listing_id) DO UPDATE SET
            listing_id = EXCLUDED.listing_id,
            url = EXCLUDED.url,
            dealer_id = coalesce(EXCLUDED.dealer_id, listing_sources.dealer_id),
            last_seen_at = EXCLUDED.last_seen_at
        """,
        {
            "source": rows[0]["source"],
            "seen_at": rows[0]["seen_at"],
            "listing_ids": [row["listing_id"] for row in rows],
            "source_listing_ids": [row["source_listing_id"] for row in rows],
            "urls": [row["url"] for row in rows],
            "dealer_ids": [row["dealer_id"] for row in rows],
        },
    )


def mark_unseen_sold(
    conn: psycopg.Connection,
    *,
    source: str,
    cutoff: datetime,
    now: datetime,
    latitude: float,
    longitude: float,
    radius_miles: float,
) -> int:
    """Active listings of `source` whose dealer is inside the run's area and that no source
    has shown since `cutoff`: sold. Only the area a run covers can prove absence."""
    cursor = conn.execute(
        """
        UPDATE listings l SET status = 'sold', sold_at = %(now)s
        FROM dealers d
        WHERE l.status = 'active' AND l.last_seen_at < %(cutoff)s
          AND d.id = l.dealer_id
          AND EXISTS (SELECT 1 FROM listing_sources s
                      WHERE s.listing_id = l.id AND s.source = %(source)s)
          AND earth_box(ll_to_earth(%(latitude)s, %(longitude)s), %(radius_meters)s)
              @> ll_to_earth(d.latitude, d.longitude)
          AND earth_distance(ll_to_earth(%(latitude)s, %(longitude)s),
                             ll_to_earth(d.latitude, d.longitude)) <= %(radius_meters)s
        """,
        {
            "now": now,
            "cutoff": cutoff,
            "source": source,
            "latitude": latitude,
            "longitude": longitude,
            "radius_meters": radius_miles * MILES_TO_METERS,
        },
    )
    return cursor.rowcount


def mark_gone(conn: psycopg.Connection, source: str, source_listing_id: str) -> bool:
    """A detail page says the listing is gone: it is removed (it may have sold elsewhere)."""
    cursor = conn.execute(
        """
        UPDATE listings SET status = 'removed'
        WHERE status = 'active' AND id = (SELECT listing_id FROM listing_sources
                                          WHERE source = %s AND source_listing_id = %s)
        """,
        (source, source_listing_id),
    )
    return cursor.rowcount > 0


# -- runs and source states ---------------------------------------------------------------


def start_run(
    conn: psycopg.Connection, source: str, trigger: str, parameters: dict[str, Any], robots: bool
) -> int:
    row = conn.execute(
        "INSERT INTO scrape_runs (source, trigger, status, parameters, robots_respected)"
        " VALUES (%s, %s, 'running', %s, %s) RETURNING id",
        (source, trigger, Jsonb(parameters), robots),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_run(conn: psycopg.Connection, run_id: int, values: dict[str, Any]) -> None:
    values = {**values, "skipped": Jsonb(values.get("skipped") or {}), "id": run_id}
    conn.execute(
        """
        UPDATE scrape_runs SET status = %(status)s, finished_at = now(),
            duration_seconds = extract(epoch FROM now() - started_at),
            pages_fetched = %(pages_fetched)s, listings_parsed = %(listings_parsed)s,
            listings_new = %(listings_new)s, listings_updated = %(listings_updated)s,
            listings_unchanged = %(listings_unchanged)s, price_changes = %(price_changes)s,
            sold = %(sold)s, errors = %(errors)s, skipped = %(skipped)s,
            blocked_reason = %(blocked_reason)s, error = %(error)s
        WHERE id = %(id)s
        """,
        values,
    )


def fail_stale_runs(conn: psycopg.Connection, source: str, older_than: datetime) -> int:
    """Runs left 'running' by a process that died: failed, so they stop looking alive."""
    cursor = conn.execute(
        "UPDATE scrape_runs SET status = 'failed', finished_at = now(),"
        " error = 'interrupted: the process running it stopped'"
        " WHERE source = %s AND status = 'running' AND started_at < %s",
        (source, older_than),
    )
    return cursor.rowcount


def source_blocked_until(conn: psycopg.Connection, source: str) -> datetime | None:
    row = conn.execute(
        "SELECT blocked_until FROM source_states WHERE source = %s AND status = 'blocked'",
        (source,),
    ).fetchone()
    return row[0] if row else None


def record_block(conn: psycopg.Connection, source: str, reason: str, now: datetime) -> datetime:
    """Mark the source blocked; the back-off doubles with each block in a row, up to a day.
    Returns until when it is left alone."""
    row = conn.execute(
        """
        INSERT INTO source_states (source, status, consecutive_blocks, blocked_until,
                                   last_blocked_reason)
        VALUES (%(source)s, 'blocked', 1, %(now)s + interval '1 hour', %(reason)s)
        ON CONFLICT (source) DO UPDATE SET
            status = 'blocked',
            consecutive_blocks = source_states.consecutive_blocks + 1,
            blocked_until = %(now)s + least(interval '1 day',
                interval '1 hour' * power(2, source_states.consecutive_blocks)),
            last_blocked_reason = %(reason)s
        RETURNING blocked_until
        """,
        {"source": source, "reason": reason, "now": now},
    ).fetchone()
    assert row is not None
    blocked_until: datetime = row[0]
    return blocked_until


def record_success(conn: psycopg.Connection, source: str, now: datetime) -> None:
    conn.execute(
        """
        INSERT INTO source_states (source, status, consecutive_blocks, last_success_at)
        VALUES (%(source)s, 'ok', 0, %(now)s)
        ON CONFLICT (source) DO UPDATE SET status = 'ok', consecutive_blocks = 0,
            blocked_until = NULL, last_success_at = %(now)s
        """,
        {"source": source, "now": now},
    )


# -- VIN decodes ----------------------------------------------------------------------------


def cached_decodes(conn: psycopg.Connection, vins: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        "SELECT vin, decoded FROM vin_decodes WHERE vin = ANY(%s)", (list(vins),)
    ).fetchall()
    return {row[0]: row[1] for row in rows}


def store_decodes(
    conn: psycopg.Connection, decodes: Iterable[tuple[str, str, dict[str, Any]]]
) -> None:
    """(vin, source, decoded) rows; an online decode replaces an offline one, never the
    other way round."""
    with conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO vin_decodes (vin, source, decoded) VALUES (%s, %s, %s)
            ON CONFLICT (vin) DO UPDATE SET source = EXCLUDED.source,
                decoded = EXCLUDED.decoded, decoded_at = now()
            WHERE vin_decodes.source = 'offline'
            """,
            [(vin, source, Jsonb(decoded)) for vin, source, decoded in decodes],
        )


def offline_decoded_vins(conn: psycopg.Connection, limit: int) -> list[str]:
    rows = conn.execute(
        "SELECT vin FROM vin_decodes WHERE source = 'offline' ORDER BY decoded_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [row[0] for row in rows]


def set_listing_decodes(conn: psycopg.Connection, decodes: dict[str, dict[str, Any]]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "UPDATE listings SET vin_decoded = %s WHERE vin = %s"
            " AND vin_decoded IS DISTINCT FROM %s",
            [(Jsonb(decoded), vin, Jsonb(decoded)) for vin, decoded in decodes.items()],
        )
