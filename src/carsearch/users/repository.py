"""All SQL of a user's own data. Every statement names the user: nothing here can reach
another user's rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.models import Listing, Notification, SavedSearch, UserFavorite

# A favorite with its listing as a summary needs: dealer name and city, the last price
# change. One statement for the whole list.
_FAVORITES_SQL = text(
    """
    SELECT l.vin, l.year, l.make, l.model, l.trim, l.price, l.mileage, l.condition,
           l.status, l.images->>0 AS image, d.name AS dealer_name, d.city AS dealer_city,
           d.state AS dealer_state, l.first_seen_at, l.sold_at, l.last_seen_at,
           change.amount AS change_amount, change.observed_at AS change_at,
           f.created_at AS saved_at, f.saved_price
    FROM user_favorites f
    JOIN listings l ON l.id = f.listing_id
    LEFT JOIN dealers d ON d.id = l.dealer_id
    LEFT JOIN LATERAL (
        SELECT h.price - lag(h.price) OVER (ORDER BY h.observed_at, h.id) AS amount,
               h.observed_at
        FROM listing_price_history h WHERE h.listing_id = l.id
        ORDER BY h.observed_at DESC, h.id DESC LIMIT 1
    ) change ON change.amount IS NOT NULL
    WHERE f.user_id = :user_id
    ORDER BY f.created_at DESC, l.id DESC
    LIMIT :limit OFFSET :offset
    """
)


async def favorites(
    session: AsyncSession, user_id: int, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    rows = await session.execute(
        _FAVORITES_SQL, {"user_id": user_id, "limit": limit, "offset": offset}
    )
    total = await session.scalar(
        select(func.count()).select_from(UserFavorite).where(UserFavorite.user_id == user_id)
    )
    return [dict(row._mapping) for row in rows], int(total or 0)


async def listing_id_and_price(session: AsyncSession, vin: str) -> tuple[int, int | None] | None:
    row = (
        await session.execute(select(Listing.id, Listing.price).where(Listing.vin == vin))
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def add_favorite(
    session: AsyncSession, user_id: int, listing_id: int, price: int | None
) -> bool:
    """True when newly saved; saving twice keeps the first save (and its price)."""
    result = await session.execute(
        insert(UserFavorite)
        .values(user_id=user_id, listing_id=listing_id, saved_price=price, notified_price=price)
        .on_conflict_do_nothing()
        .returning(UserFavorite.listing_id)
    )
    return result.scalar_one_or_none() is not None


async def remove_favorite(session: AsyncSession, user_id: int, listing_id: int) -> bool:
    result = await session.execute(
        delete(UserFavorite)
        .where(UserFavorite.user_id == user_id, UserFavorite.listing_id == listing_id)
        .returning(UserFavorite.listing_id)
    )
    return result.scalar_one_or_none() is not None


async def saved_searches(session: AsyncSession, user_id: int) -> Sequence[SavedSearch]:
    result = await session.execute(
        select(SavedSearch)
        .where(SavedSearch.user_id == user_id)
        .order_by(SavedSearch.created_at.desc(), SavedSearch.id.desc())
    )
    return result.scalars().all()


async def count_saved_searches(session: AsyncSession, user_id: int) -> int:
    total = await session.scalar(
        select(func.count()).select_from(SavedSearch).where(SavedSearch.user_id == user_id)
    )
    return int(total or 0)


async def add_saved_search(
    session: AsyncSession,
    user_id: int,
    name: str,
    filters: dict[str, Any],
    frequency: str,
    now: datetime,
) -> SavedSearch:
    # Alerts start from now: a new saved search does not announce the whole inventory.
    saved = SavedSearch(
        user_id=user_id,
        name=name,
        filters=filters,
        alert_frequency=frequency,
        last_alerted_at=now,
    )
    session.add(saved)
    await session.flush()
    await session.refresh(saved)
    return saved


async def remove_saved_search(session: AsyncSession, user_id: int, search_id: int) -> bool:
    result = await session.execute(
        delete(SavedSearch)
        .where(SavedSearch.user_id == user_id, SavedSearch.id == search_id)
        .returning(SavedSearch.id)
    )
    return result.scalar_one_or_none() is not None


async def notifications(
    session: AsyncSession, user_id: int, unread_only: bool, limit: int, offset: int
) -> tuple[Sequence[Notification], int]:
    where = [Notification.user_id == user_id]
    if unread_only:
        where.append(Notification.read_at.is_(None))
    rows = await session.execute(
        select(Notification)
        .where(*where)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
        .offset(offset)
    )
    total = await session.scalar(select(func.count()).select_from(Notification).where(*where))
    return rows.scalars().all(), int(total or 0)


async def mark_read(
    session: AsyncSession, user_id: int, ids: Sequence[int] | None, now: datetime
) -> int:
    """Mark the user's notifications read (`ids` None: all of them); returns how many."""
    where = [Notification.user_id == user_id, Notification.read_at.is_(None)]
    if ids is not None:
        where.append(Notification.id.in_(list(ids)))
    result = await session.execute(
        update(Notification).where(*where).values(read_at=now).returning(Notification.id)
    )
    return len(result.scalars().all())


# -- alerts ---------------------------------------------------------------------------------

_FAVORITE_EVENTS_SQL = text(
    """
    SELECT f.user_id, f.listing_id, l.vin, l.year, l.make, l.model, l.price, l.status,
           coalesce(f.notified_price, f.saved_price) AS before_price
    FROM user_favorites f JOIN listings l ON l.id = f.listing_id
    WHERE (l.status = 'active' AND l.price IS NOT NULL
           AND l.price < coalesce(f.notified_price, f.saved_price))
       OR l.status = 'sold'
    """
)


async def favorite_events(session: AsyncSession) -> list[dict[str, Any]]:
    """Favorites whose price fell below the lowest price notified (or saved), and favorites
    that sold. Notifications are deduplicated, so a sold one found again is harmless."""
    return [dict(row._mapping) for row in await session.execute(_FAVORITE_EVENTS_SQL)]


async def set_notified_price(
    session: AsyncSession, user_id: int, listing_id: int, price: int
) -> None:
    await session.execute(
        update(UserFavorite)
        .where(UserFavorite.user_id == user_id, UserFavorite.listing_id == listing_id)
        .values(notified_price=price)
    )


async def due_saved_searches(session: AsyncSession, now: datetime) -> Sequence[SavedSearch]:
    """Saved searches whose alerts are due: instant ones always, daily ones a day after
    their last alert, weekly ones a week after."""
    result = await session.execute(
        select(SavedSearch).where(
            text(
                "(alert_frequency = 'instant')"
                " OR (alert_frequency = 'daily' AND last_alerted_at <= :now - interval '1 day')"
                " OR (alert_frequency = 'weekly' AND last_alerted_at <= :now - interval '7 days')"
                " OR (alert_frequency <> 'off' AND last_alerted_at IS NULL)"
            ).bindparams(now=now)
        )
    )
    return result.scalars().all()


_DROPPED_SQL = text(
    """
    SELECT DISTINCT h.listing_id
    FROM (
        SELECT listing_id, price, observed_at,
               lag(price) OVER (PARTITION BY listing_id ORDER BY observed_at, id) AS previous
        FROM listing_price_history
        WHERE listing_id IN (SELECT listing_id FROM listing_price_history
                             WHERE observed_at > :since AND observed_at <= :until)
    ) h
    WHERE h.observed_at > :since AND h.observed_at <= :until AND h.price < h.previous
    """
)


async def listings_with_price_drops(
    session: AsyncSession, since: datetime, until: datetime
) -> list[int]:
    rows = await session.execute(_DROPPED_SQL, {"since": since, "until": until})
    return [int(row[0]) for row in rows]


async def listings_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(
            Listing.id, Listing.vin, Listing.year, Listing.make, Listing.model, Listing.price
        ).where(Listing.id.in_(list(ids)))
    )
    return {row.id: dict(row._mapping) for row in rows}


async def add_notifications(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert what is new; an event already notified (same user and dedupe key) is not."""
    if not rows:
        return 0
    result = await session.execute(
        insert(Notification)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
        .returning(Notification.id)
    )
    return len(result.scalars().all())


async def set_last_alerted(session: AsyncSession, search_ids: Sequence[int], at: datetime) -> None:
    if search_ids:
        await session.execute(
            update(SavedSearch)
            .where(SavedSearch.id.in_(list(search_ids)))
            .values(last_alerted_at=at)
        )


async def undelivered(session: AsyncSession, limit: int, max_attempts: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            """
            SELECT n.id, n.user_id, u.email, n.kind, n.title, n.payload, n.created_at
            FROM notifications n JOIN users u ON u.id = n.user_id
            WHERE n.delivered_at IS NULL AND n.delivery_attempts < :max_attempts
            ORDER BY n.created_at, n.id
            LIMIT :limit
            """
        ),
        {"limit": limit, "max_attempts": max_attempts},
    )
    return [dict(row._mapping) for row in rows]


async def mark_delivery(
    session: AsyncSession, ids: Sequence[int], *, delivered: bool, now: datetime
) -> None:
    values: dict[str, Any] = {"delivery_attempts": Notification.delivery_attempts + 1}
    if delivered:
        values["delivered_at"] = now
    await session.execute(
        update(Notification).where(Notification.id.in_(list(ids))).values(**values)
    )
