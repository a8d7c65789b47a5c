"""A signed-in user's rules: profile, favorites, saved searches, notifications. No HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.dealers.geo import zip_centroid
from carsearch.errors import Conflict, InvalidInput, NotFound
from carsearch.listings.service import market_days, parse_vin
from carsearch.models import User
from carsearch.search.schemas import ListingSummary, PriceChange
from carsearch.users import repository
from carsearch.users.schemas import (
    FavoriteEntry,
    NotificationOut,
    ProfileUpdate,
    SavedSearchCreate,
    SavedSearchOut,
)

MAX_SAVED_SEARCHES = 50


async def update_profile(db: AsyncSession, user: User, change: ProfileUpdate) -> User:
    if change.name is not None:
        user.name = change.name.strip()
    if change.preferences is not None:
        home = change.preferences.home_zip
        if home is not None and zip_centroid(home) is None:
            raise InvalidInput(
                f"unknown ZIP code {home}",
                details=[{"loc": ["body", "preferences", "home_zip"], "message": "unknown ZIP"}],
            )
        user.preferences = change.preferences.model_dump(mode="json", exclude_defaults=True)
    await db.flush()
    await db.refresh(user)
    return user


def _favorite(row: dict[str, Any], now: datetime) -> FavoriteEntry:
    change = (
        PriceChange(amount=row["change_amount"], changed_at=row["change_at"])
        if row["change_amount"] is not None
        else None
    )
    price, saved = row["price"], row["saved_price"]
    return FavoriteEntry(
        listing=ListingSummary(
            vin=row["vin"],
            year=row["year"],
            make=row["make"],
            model=row["model"],
            trim=row["trim"],
            price=price,
            mileage=row["mileage"],
            condition=row["condition"],
            status=row["status"],
            image=row["image"],
            dealer_name=row["dealer_name"],
            dealer_city=row["dealer_city"],
            dealer_state=row["dealer_state"],
            days_on_market=market_days(
                row["first_seen_at"], row["sold_at"], row["status"], row["last_seen_at"], now
            ),
            last_price_change=change,
        ),
        saved_at=row["saved_at"],
        saved_price=saved,
        price_change_since_saved=(price - saved)
        if price is not None and saved is not None
        else None,
    )


async def favorites(
    db: AsyncSession, user: User, page: int, page_size: int
) -> tuple[list[FavoriteEntry], int]:
    rows, total = await repository.favorites(db, user.id, page_size, (page - 1) * page_size)
    now = datetime.now(UTC)
    return [_favorite(row, now) for row in rows], total


async def _listing(db: AsyncSession, raw_vin: str) -> tuple[int, int | None]:
    vin = parse_vin(raw_vin)
    found = await repository.listing_id_and_price(db, vin)
    if found is None:
        raise NotFound(f"no listing with VIN {vin}")
    return found


async def add_favorite(db: AsyncSession, user: User, raw_vin: str) -> bool:
    listing_id, price = await _listing(db, raw_vin)
    return await repository.add_favorite(db, user.id, listing_id, price)


async def remove_favorite(db: AsyncSession, user: User, raw_vin: str) -> bool:
    listing_id, _price = await _listing(db, raw_vin)
    return await repository.remove_favorite(db, user.id, listing_id)


def _saved_out(saved: Any) -> SavedSearchOut:
    return SavedSearchOut(
        id=saved.id,
        name=saved.name,
        filters=saved.filters,
        alert_frequency=saved.alert_frequency,
        created_at=saved.created_at,
        last_alerted_at=saved.last_alerted_at,
    )


async def saved_searches(db: AsyncSession, user: User) -> list[SavedSearchOut]:
    return [_saved_out(saved) for saved in await repository.saved_searches(db, user.id)]


async def save_search(db: AsyncSession, user: User, request: SavedSearchCreate) -> SavedSearchOut:
    if request.filters.zip is not None and zip_centroid(request.filters.zip) is None:
        raise InvalidInput(
            f"unknown ZIP code {request.filters.zip}",
            details=[{"loc": ["body", "filters", "zip"], "message": "unknown ZIP"}],
        )
    if await repository.count_saved_searches(db, user.id) >= MAX_SAVED_SEARCHES:
        raise Conflict(f"at most {MAX_SAVED_SEARCHES} saved searches; delete one first")
    saved = await repository.add_saved_search(
        db,
        user.id,
        request.name.strip(),
        request.filters.model_dump(mode="json", exclude_defaults=True),
        request.alert_frequency.value,
        datetime.now(UTC),
    )
    return _saved_out(saved)


async def delete_saved_search(db: AsyncSession, user: User, search_id: int) -> None:
    if not await repository.remove_saved_search(db, user.id, search_id):
        raise NotFound(f"no saved search {search_id}")


async def notifications(
    db: AsyncSession, user: User, unread_only: bool, page: int, page_size: int
) -> tuple[list[NotificationOut], int]:
    rows, total = await repository.notifications(
        db, user.id, unread_only, page_size, (page - 1) * page_size
    )
    return [NotificationOut.model_validate(row) for row in rows], total


async def mark_read(db: AsyncSession, user: User, ids: list[int] | None) -> int:
    return await repository.mark_read(db, user.id, ids, datetime.now(UTC))
