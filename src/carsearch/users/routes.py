"""/api/v1/user: the signed-in user's own data. Everything needs a valid access token, and
nothing reaches another user's rows (they answer 404, as if they did not exist)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from carsearch.auth.routes import CurrentUser
from carsearch.auth.schemas import UserProfile
from carsearch.deps import DbSession
from carsearch.listings.routes import VinPath
from carsearch.schemas import Envelope, Meta, Pagination, error_responses
from carsearch.search.service import total_pages
from carsearch.users import service
from carsearch.users.schemas import (
    FavoriteEntry,
    MarkedRead,
    MarkRead,
    NotificationOut,
    ProfileUpdate,
    SavedSearchCreate,
    SavedSearchOut,
)

router = APIRouter(prefix="/user", tags=["user"])

Page = Annotated[int, Query(ge=1, le=10_000, description="1-based page.", examples=[1])]
PageSize = Annotated[int, Query(ge=1, le=100, description="Entries per page.", examples=[24])]
_AUTH_ERRORS = (401, 422)


def _pagination(page: int, page_size: int, total: int) -> Pagination:
    return Pagination(
        page=page, page_size=page_size, total=total, total_pages=total_pages(total, page_size)
    )


@router.get(
    "/profile",
    response_model=Envelope[UserProfile],
    responses=error_responses(*_AUTH_ERRORS),
    summary="Your profile",
)
async def get_profile(user: CurrentUser) -> Envelope[UserProfile]:
    """Who you are and your search preferences."""
    return Envelope(data=UserProfile.model_validate(user))


@router.put(
    "/profile",
    response_model=Envelope[UserProfile],
    responses=error_responses(*_AUTH_ERRORS, 400),
    summary="Update your profile",
)
async def put_profile(
    user: CurrentUser, db: DbSession, change: ProfileUpdate
) -> Envelope[UserProfile]:
    """Change your name and replace your preferences (validated: a home ZIP must exist)."""
    updated = await service.update_profile(db, user, change)
    return Envelope(data=UserProfile.model_validate(updated))


@router.get(
    "/favorites",
    response_model=Envelope[list[FavoriteEntry]],
    responses=error_responses(*_AUTH_ERRORS),
    summary="Your saved cars",
)
async def get_favorites(
    user: CurrentUser, db: DbSession, page: Page = 1, page_size: PageSize = 24
) -> Envelope[list[FavoriteEntry]]:
    """Newest first. Sold cars stay, marked sold; each shows how its price moved since."""
    entries, total = await service.favorites(db, user, page, page_size)
    return Envelope(data=entries, meta=Meta(pagination=_pagination(page, page_size, total)))


@router.post(
    "/favorites/{vin}",
    response_model=Envelope[dict[str, bool]],
    responses=error_responses(*_AUTH_ERRORS, 404),
    summary="Save a car",
)
async def post_favorite(
    user: CurrentUser, db: DbSession, vin: VinPath
) -> Envelope[dict[str, bool]]:
    """Idempotent: saving a saved car changes nothing (`created` false)."""
    return Envelope(data={"created": await service.add_favorite(db, user, vin)})


@router.delete(
    "/favorites/{vin}",
    response_model=Envelope[dict[str, bool]],
    responses=error_responses(*_AUTH_ERRORS, 404),
    summary="Forget a saved car",
)
async def delete_favorite(
    user: CurrentUser, db: DbSession, vin: VinPath
) -> Envelope[dict[str, bool]]:
    """Idempotent: forgetting a car you had not saved changes nothing (`deleted` false)."""
    return Envelope(data={"deleted": await service.remove_favorite(db, user, vin)})


@router.get(
    "/searches",
    response_model=Envelope[list[SavedSearchOut]],
    responses=error_responses(*_AUTH_ERRORS),
    summary="Your saved searches",
)
async def get_searches(user: CurrentUser, db: DbSession) -> Envelope[list[SavedSearchOut]]:
    """Newest first, with their filters and alert frequency."""
    return Envelope(data=await service.saved_searches(db, user))


@router.post(
    "/searches",
    status_code=201,
    response_model=Envelope[SavedSearchOut],
    responses=error_responses(*_AUTH_ERRORS, 400, 409),
    summary="Save a search",
)
async def post_search(
    user: CurrentUser, db: DbSession, request: SavedSearchCreate
) -> Envelope[SavedSearchOut]:
    """Filters use GET /listings' names and rules (a bad range is a 422). Alerts cover
    what appears after it is saved."""
    return Envelope(data=await service.save_search(db, user, request))


@router.delete(
    "/searches/{search_id}",
    response_model=Envelope[dict[str, bool]],
    responses=error_responses(*_AUTH_ERRORS, 404),
    summary="Delete a saved search",
)
async def delete_search(
    user: CurrentUser,
    db: DbSession,
    search_id: Annotated[
        int, Path(ge=1, le=2**62, description="The saved search's id.", examples=[7])
    ],
) -> Envelope[dict[str, bool]]:
    """Its notifications go with it."""
    await service.delete_saved_search(db, user, search_id)
    return Envelope(data={"deleted": True})


@router.get(
    "/notifications",
    response_model=Envelope[list[NotificationOut]],
    responses=error_responses(*_AUTH_ERRORS),
    summary="Your notifications",
)
async def get_notifications(
    user: CurrentUser,
    db: DbSession,
    page: Page = 1,
    page_size: PageSize = 24,
    unread: Annotated[bool, Query(description="Only unread ones.", examples=[True])] = False,
) -> Envelope[list[NotificationOut]]:
    """New matches of saved searches, price drops and sold favorites, newest first."""
    entries, total = await service.notifications(db, user, unread, page, page_size)
    return Envelope(data=entries, meta=Meta(pagination=_pagination(page, page_size, total)))


@router.post(
    "/notifications/read",
    response_model=Envelope[MarkedRead],
    responses=error_responses(*_AUTH_ERRORS, 400),
    summary="Mark notifications read",
)
async def post_read(user: CurrentUser, db: DbSession, request: MarkRead) -> Envelope[MarkedRead]:
    """`{"ids": [...]}` marks those, `{"all": true}` marks every one; ids of other users'
    notifications are ignored."""
    if not request.all and not request.ids:
        return Envelope(data=MarkedRead(marked=0))
    marked = await service.mark_read(db, user, None if request.all else request.ids)
    return Envelope(data=MarkedRead(marked=marked))
