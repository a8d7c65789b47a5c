"""Seeding: reference data, then a deterministic synthetic inventory, in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from carsearch.errors import SetupError
from carsearch.seed import repository
from carsearch.seed.generator import SEED_SOURCE, InventoryGenerator, dealer_count
from carsearch.seed.reference import load_reference

MAX_SEED_LISTINGS = 5_000_000


@dataclass(frozen=True, slots=True)
class SeedReport:
    dealers: int
    listings: int
    seconds: float


def seed_reference(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        repository.upsert_reference(conn, load_reference())


def seed_inventory(
    dsn: str,
    *,
    listings: int,
    seed: int,
    reset: bool = False,
    now: datetime | None = None,
    on_progress: Callable[[int], None] = lambda _: None,
) -> SeedReport:
    """Write `listings` generated listings and their dealers; all or nothing."""
    if not 0 <= listings <= MAX_SEED_LISTINGS:
        raise SetupError(f"--listings must be between 0 and {MAX_SEED_LISTINGS:,}")
    started = datetime.now(UTC)
    makes = load_reference()
    with psycopg.connect(dsn) as conn:
        repository.upsert_reference(conn, makes)
        repository.lock_inventory(conn)
        if reset:
            repository.delete_seeded(conn)
        elif repository.count_listings(conn, SEED_SOURCE):
            raise SetupError(
                "the database already holds seeded listings; add --reset to replace them"
            )
        first_dealer, first_listing = repository.next_ids(conn)
        taken = repository.existing_vins(conn) if repository.count_listings(conn) else set()
        generator = InventoryGenerator(
            makes,
            seed=seed,
            now=now or started,
            first_dealer_id=first_dealer,
            first_listing_id=first_listing,
            taken_vins=taken,
        )
        dealers = generator.dealers(dealer_count(listings)) if listings else []
        repository.copy_dealers(conn, dealers)
        repository.copy_listings(conn, generator.listings(listings, dealers), on_progress)
        repository.reset_identity_sequences(conn)
        conn.commit()
        repository.analyze(conn)
    seconds = (datetime.now(UTC) - started).total_seconds()
    return SeedReport(dealers=len(dealers), listings=listings, seconds=seconds)
