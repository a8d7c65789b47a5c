"""Normalized listings into the database: dealers, dedupe by VIN, sources, price history.

A page is stored in one transaction: all of its listings or none. Re-storing the same page
changes nothing but the time the listings were last seen (which does not count as a
change, so the search sync does not re-index them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from carsearch.dealers.geo import zip_centroid
from carsearch.ingest import repository
from carsearch.ingest.normalize import NormalizedListing
from carsearch.ingest.records import ScrapedDealer
from carsearch.ingest.vin_decode import DecodedVin


@dataclass
class RunCounts:
    """What a run did, for `scrape_runs` and the command's summary."""

    pages_fetched: int = 0
    listings_parsed: int = 0
    listings_new: int = 0
    listings_updated: int = 0
    listings_unchanged: int = 0
    price_changes: int = 0
    sold: int = 0
    errors: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_row(self) -> dict[str, Any]:
        return {
            "pages_fetched": self.pages_fetched,
            "listings_parsed": self.listings_parsed,
            "listings_new": self.listings_new,
            "listings_updated": self.listings_updated,
            "listings_unchanged": self.listings_unchanged,
            "price_changes": self.price_changes,
            "sold": self.sold,
            "errors": self.errors,
            "skipped": dict(self.skipped),
        }


@dataclass(frozen=True, slots=True)
class Stored:
    listing_id: int
    vin: str
    url: str
    source_listing_id: str
    new: bool


def dealer_key(dealer: ScrapedDealer) -> str | None:
    """The dealer's id at the source, or name and ZIP when the page gives no id."""
    if dealer.source_dealer_id:
        return dealer.source_dealer_id[:128]
    if dealer.name:
        return f"{dealer.name}|{dealer.zip or ''}"[:128]
    return None


def _dealer_row(source: str, key: str, dealer: ScrapedDealer) -> dict[str, Any]:
    centroid = zip_centroid(dealer.zip) if dealer.zip else None
    return {
        "source": source,
        "source_dealer_id": key,
        "name": (dealer.name or "Unknown dealer")[:500],
        "address": dealer.address,
        "city": dealer.city,
        "state": dealer.state if dealer.state and len(dealer.state) == 2 else None,
        "zip": dealer.zip if dealer.zip and len(dealer.zip) == 5 else None,
        "latitude": centroid.latitude if centroid else None,
        "longitude": centroid.longitude if centroid else None,
        "phone": dealer.phone[:32] if dealer.phone else None,
        "website": dealer.website,
        "rating": dealer.rating,
        "review_count": dealer.review_count,
    }


def _listing_row(
    listing: NormalizedListing, dealer_id: int | None, decoded: DecodedVin | None
) -> dict[str, Any]:
    def value(enum: Any) -> Any:
        return getattr(enum, "value", enum)

    return {
        "vin": listing.vin,
        "url": listing.url,
        "source": listing.source,
        "source_listing_id": listing.source_listing_id,
        "condition": value(listing.condition),
        "year": listing.year,
        "make": listing.make,
        "model": listing.model,
        "trim": listing.trim,
        "body_style": value(listing.body_style),
        "drivetrain": value(listing.drivetrain),
        "fuel_type": value(listing.fuel_type),
        "transmission": value(listing.transmission),
        "engine": listing.engine,
        "exterior_color": value(listing.exterior_color),
        "interior_color": value(listing.interior_color),
        "mileage": listing.mileage,
        "price": listing.price,
        "msrp": listing.msrp,
        "dealer_id": dealer_id,
        "images": listing.images,
        "features": listing.features,
        "description": listing.description,
        "vin_decoded": decoded.to_json() if decoded is not None else None,
    }


def _dealer_of(listing: NormalizedListing) -> str | None:
    if listing.dealer is None or listing.private_seller:
        return None
    return dealer_key(listing.dealer)


def store_page(
    conn: psycopg.Connection,
    listings: Sequence[NormalizedListing],
    decodes: Mapping[str, DecodedVin],
    counts: RunCounts,
    seen_at: datetime,
    *,
    detail: bool = False,
) -> list[Stored]:
    """Store one page's listings in one transaction; counts what changed.

    `detail` says the listings come from detail pages, whose descriptions win over what
    results pages show."""
    unique: dict[str, NormalizedListing] = {}
    for listing in listings:
        unique.setdefault(listing.vin, listing)  # the same car twice on a page: once
    if not unique:
        return []
    page_counts = RunCounts()
    with conn.transaction():
        dealers: dict[str, dict[str, Any]] = {}
        for listing in unique.values():
            key = _dealer_of(listing)
            if key is not None and listing.dealer is not None:
                dealers[key] = _dealer_row(listing.source, key, listing.dealer)
        dealer_ids = repository.upsert_dealers(conn, list(dealers.values()))
        existing = repository.listings_by_vin(conn, list(unique))
        rows = {
            vin: _listing_row(listing, dealer_ids.get(_dealer_of(listing) or ""), decodes.get(vin))
            for vin, listing in unique.items()
        }
        fresh = [vin for vin in unique if vin not in existing]
        seen = [vin for vin in unique if vin in existing]
        new_ids = repository.insert_listings(conn, [rows[vin] for vin in fresh], seen_at)
        ids = dict(zip(fresh, new_ids, strict=True))
        changes = repository.update_listings(
            conn, [(existing[vin], rows[vin]) for vin in seen], seen_at, detail=detail
        )
        prices: list[tuple[int, int, int | None, datetime]] = []
        for vin in fresh:
            price = unique[vin].price
            if price is not None:
                prices.append((ids[vin], price, unique[vin].mileage, seen_at))
        page_counts.listings_new = len(fresh)
        for vin, changed in zip(seen, changes, strict=True):
            ids[vin] = existing[vin].id
            price = unique[vin].price
            if price is not None and price != existing[vin].price:
                prices.append((ids[vin], price, unique[vin].mileage, seen_at))
                page_counts.price_changes += 1
            if changed:
                page_counts.listings_updated += 1
            else:
                page_counts.listings_unchanged += 1
        repository.record_prices(conn, prices)
        sources = [
            {
                "listing_id": ids[vin],
                "source": listing.source,
                "source_listing_id": listing.source_listing_id,
                "url": listing.url,
                "dealer_id": rows[vin]["dealer_id"],
                "seen_at": seen_at,
            }
            for vin, listing in unique.items()
        ]
        stored = [
            Stored(ids[vin], vin, listing.url, listing.source_listing_id, vin not in existing)
            for vin, listing in unique.items()
        ]
        repository.upsert_sources(conn, sources)
    # Counted only once the page is committed.
    counts.listings_new += page_counts.listings_new
    counts.listings_updated += page_counts.listings_updated
    counts.listings_unchanged += page_counts.listings_unchanged
    counts.price_changes += page_counts.price_changes
    return stored
