"""All SQL of seeding: reference upserts and bulk COPY of generated inventory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import psycopg
from psycopg.types.json import Jsonb

from carsearch.seed.generator import SEED_SOURCE, SeedDealer, SeedListing
from carsearch.seed.reference import MakeSpec, slugify

_LISTING_COLUMNS = (
    "id", "vin", "source", "source_listing_id", "status", "condition", "year", "make",
    "model", "trim", "body_style", "drivetrain", "fuel_type", "transmission", "engine",
    "exterior_color", "interior_color", "mileage", "price", "msrp", "dealer_id", "images",
    "features", "description", "first_seen_at", "last_seen_at", "sold_at",
)  # fmt: skip
_DEALER_COLUMNS = (
    "id", "source", "source_dealer_id", "name", "address", "city", "state", "zip",
    "latitude", "longitude", "phone", "website", "rating", "review_count",
)  # fmt: skip
_EMPTY_IMAGES = Jsonb([])


def upsert_reference(conn: psycopg.Connection, makes: Sequence[MakeSpec]) -> None:
    with conn.cursor() as cur:
        for make in makes:
            make_id = cur.execute(
                """
                INSERT INTO makes (name, slug, aliases, country) VALUES (%s, %s, %s, %s)
                ON CONFLICT (name) DO UPDATE
                    SET slug = EXCLUDED.slug, aliases = EXCLUDED.aliases,
                        country = EXCLUDED.country
                RETURNING id
                """,
                (make.name, slugify(make.name), list(make.aliases), make.country),
            ).fetchone()
            assert make_id is not None
            cur.executemany(
                """
                INSERT INTO models (make_id, name, slug, aliases, body_style, segment,
                                    msrp_min, msrp_max, year_min, year_max)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (make_id, name) DO UPDATE
                    SET slug = EXCLUDED.slug, aliases = EXCLUDED.aliases,
                        body_style = EXCLUDED.body_style, segment = EXCLUDED.segment,
                        msrp_min = EXCLUDED.msrp_min, msrp_max = EXCLUDED.msrp_max,
                        year_min = EXCLUDED.year_min, year_max = EXCLUDED.year_max
                """,
                [
                    (
                        make_id[0],
                        model.name,
                        slugify(model.name),
                        list(model.aliases),
                        model.body_style.value,
                        model.segment,
                        model.msrp_min,
                        model.msrp_max,
                        model.years[0],
                        model.years[1],
                    )
                    for model in make.models
                ],
            )


def lock_inventory(conn: psycopg.Connection) -> None:
    """Keep other writers out while ids are assigned and rows copied."""
    conn.execute("LOCK TABLE dealers, listings IN SHARE ROW EXCLUSIVE MODE")


def count_listings(conn: psycopg.Connection, source: str | None = None) -> int:
    if source is None:
        row = conn.execute("SELECT count(*) FROM listings").fetchone()
    else:
        row = conn.execute("SELECT count(*) FROM listings WHERE source = %s", (source,)).fetchone()
    assert row is not None
    return int(row[0])


def delete_seeded(conn: psycopg.Connection) -> None:
    """Remove earlier seed data (and only that); history and sources go with it."""
    conn.execute("DELETE FROM listings WHERE source = %s", (SEED_SOURCE,))
    conn.execute(
        "DELETE FROM dealers d WHERE source = %s"
        " AND NOT EXISTS (SELECT 1 FROM listings l WHERE l.dealer_id = d.id)",
        (SEED_SOURCE,),
    )


def next_ids(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) + 1 FROM dealers),"
        " (SELECT coalesce(max(id), 0) + 1 FROM listings)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def existing_vins(conn: psycopg.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT vin FROM listings")}


def copy_dealers(conn: psycopg.Connection, dealers: Iterable[SeedDealer]) -> None:
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY dealers ({', '.join(_DEALER_COLUMNS)}) FROM STDIN") as copy,
    ):
        for d in dealers:
            copy.write_row(
                (
                    d.id, SEED_SOURCE, d.source_dealer_id, d.name, d.address, d.place.city,
                    d.place.state, d.place.zip, d.place.latitude, d.place.longitude, d.phone,
                    d.website, d.rating, d.review_count,
                )
            )  # fmt: skip


def copy_listings(
    conn: psycopg.Connection,
    listings: Iterable[SeedListing],
    on_progress: Callable[[int], None],
) -> None:
    """COPY listings, their price history and their source rows in one pass."""
    history: list[tuple[int, int, int, object]] = []
    sources: list[tuple[object, ...]] = []
    with conn.cursor() as cur:
        with cur.copy(f"COPY listings ({', '.join(_LISTING_COLUMNS)}) FROM STDIN") as copy:
            done = 0
            for item in listings:
                copy.write_row(
                    (
                        item.id, item.vin, SEED_SOURCE, item.source_listing_id,
                        item.status.value, item.condition.value, item.year, item.make,
                        item.model, item.trim, item.body_style.value, item.drivetrain.value,
                        item.fuel_type.value, item.transmission.value, item.engine,
                        item.exterior_color.value, item.interior_color.value, item.mileage,
                        item.price, item.msrp, item.dealer_id, _EMPTY_IMAGES, item.features,
                        item.description, item.first_seen_at, item.last_seen_at, item.sold_at,
                    )
                )  # fmt: skip
                history.extend(
                    (item.id, price, item.mileage, observed_at)
                    for price, observed_at in item.price_history
                )
                sources.append(
                    (
                        item.id, SEED_SOURCE, item.source_listing_id, item.dealer_id,
                        item.first_seen_at, item.last_seen_at,
                    )
                )  # fmt: skip
                done += 1
                if done % 2_000 == 0:
                    on_progress(2_000)
            on_progress(done % 2_000)
        with cur.copy(
            "COPY listing_price_history (listing_id, price, mileage, observed_at) FROM STDIN"
        ) as copy:
            for row in history:
                copy.write_row(row)
        with cur.copy(
            "COPY listing_sources (listing_id, source, source_listing_id, dealer_id,"
            " first_seen_at, last_seen_at) FROM STDIN"
        ) as copy:
            for source_row in sources:
                copy.write_row(source_row)


def reset_identity_sequences(conn: psycopg.Connection) -> None:
    """Rows were copied with explicit ids: move the identity sequences past them."""
    for table in ("dealers", "listings"):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
            f" (SELECT coalesce(max(id), 1) FROM {table}))"
        )


def analyze(conn: psycopg.Connection) -> None:
    conn.execute("ANALYZE dealers, listings, listing_price_history, listing_sources")
