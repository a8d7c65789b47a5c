"""Alerts: what happened since a user last heard, written as notifications, then delivered.

- Favorites (every run): a price below the lowest price already notified (or the price
  when saved), and a sale. A price that goes up and down around a level notifies once: only
  a new low notifies again.
- Saved searches (instant: every run; daily; weekly; off: never): listings first seen in
  the window that match, and matching listings whose price dropped in the window.

The window ends at the newest change the search index holds (not at "now"), because
matches are found through the index: a listing not yet indexed is found by the next run,
never skipped. Every notification has a dedupe key, unique per user, so no event is ever
notified twice, whatever runs overlap or repeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.errors import BadRequest
from carsearch.search.schemas import SearchFilters
from carsearch.search.service import SearchService
from carsearch.users import repository

logger = logging.getLogger(__name__)

# A saved search announces at most this many new cars per run; the notification says how
# many more there are.
MAX_MATCHES_PER_SEARCH = 20


@dataclass
class AlertReport:
    favorites_checked: int = 0
    searches_checked: int = 0
    notifications: int = 0


def _car(listing: dict[str, Any]) -> str:
    return f"{listing['year']} {listing['make']} {listing['model']}"


def _dollars(amount: int) -> str:
    return f"${amount:,}"


async def favorite_alerts(db: AsyncSession, report: AlertReport) -> None:
    events = await repository.favorite_events(db)
    rows = []
    for event in events:
        report.favorites_checked += 1
        payload = {"vin": event["vin"], "price": event["price"]}
        if event["status"] == "sold":
            rows.append(
                {
                    "user_id": event["user_id"],
                    "kind": "sold",
                    "listing_id": event["listing_id"],
                    "title": f"{_car(event)} you saved has sold",
                    "payload": payload,
                    "dedupe_key": f"sold:{event['listing_id']}",
                }
            )
            continue
        before, now_price = event["before_price"], event["price"]
        rows.append(
            {
                "user_id": event["user_id"],
                "kind": "price_drop",
                "listing_id": event["listing_id"],
                "title": f"{_car(event)}: {_dollars(before - now_price)} less, "
                f"now {_dollars(now_price)}",
                "payload": {**payload, "previous_price": before, "drop": before - now_price},
                "dedupe_key": f"drop:{event['listing_id']}:{now_price}",
            }
        )
        await repository.set_notified_price(db, event["user_id"], event["listing_id"], now_price)
    report.notifications += await repository.add_notifications(db, rows)


async def saved_search_alerts(
    db: AsyncSession,
    search: SearchService,
    report: AlertReport,
    *,
    now: datetime,
    until: datetime,
) -> None:
    """`until`: the end of the window, the index's position."""
    done = []
    for saved in await repository.due_saved_searches(db, now):
        report.searches_checked += 1
        since = saved.last_alerted_at or saved.created_at
        if since >= until:
            continue  # nothing indexed since the last alert
        try:
            filters = SearchFilters.model_validate(saved.filters)
            area = await search.area(db, filters)
        except (ValueError, BadRequest) as exc:
            logger.warning("saved search %s skipped: %s", saved.id, exc)
            continue
        new_ids, new_total = search.matching_ids(
            filters,
            area,
            first_seen_after=since,
            first_seen_until=until,
            limit=MAX_MATCHES_PER_SEARCH,
        )
        dropped = await repository.listings_with_price_drops(db, since, until)
        drop_ids, _ = search.matching_ids(
            filters, area, among=dropped, limit=MAX_MATCHES_PER_SEARCH
        )
        listings = await repository.listings_by_id(db, [*new_ids, *drop_ids])
        rows = []
        for listing_id in new_ids:
            listing = listings[listing_id]
            more = new_total - len(new_ids)
            rows.append(
                {
                    "user_id": saved.user_id,
                    "kind": "new_match",
                    "listing_id": listing_id,
                    "saved_search_id": saved.id,
                    "title": f'New for "{saved.name}": {_car(listing)}',
                    "payload": {
                        "vin": listing["vin"],
                        "price": listing["price"],
                        "saved_search": saved.name,
                        "more_matches": max(0, more),
                    },
                    "dedupe_key": f"match:{saved.id}:{listing_id}",
                }
            )
        for listing_id in drop_ids:
            listing = listings[listing_id]
            rows.append(
                {
                    "user_id": saved.user_id,
                    "kind": "price_drop",
                    "listing_id": listing_id,
                    "saved_search_id": saved.id,
                    "title": f'Price drop in "{saved.name}": {_car(listing)}, '
                    f"now {_dollars(listing['price'])}",
                    "payload": {
                        "vin": listing["vin"],
                        "price": listing["price"],
                        "saved_search": saved.name,
                    },
                    "dedupe_key": f"search-drop:{saved.id}:{listing_id}:{listing['price']}",
                }
            )
        report.notifications += await repository.add_notifications(db, rows)
        done.append(saved.id)
    await repository.set_last_alerted(db, done, until)


async def run_alerts(
    db: AsyncSession, search: SearchService, *, now: datetime, until: datetime
) -> AlertReport:
    report = AlertReport()
    await favorite_alerts(db, report)
    await saved_search_alerts(db, search, report, now=now, until=until)
    return report
