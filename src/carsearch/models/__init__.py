"""All tables, imported here so that Alembic and the app see the whole metadata."""

from carsearch.models.analytics import SearchQuery
from carsearch.models.appraisals import ListingAppraisal
from carsearch.models.auth import AuthRequest, AuthSession, Notification, RefreshToken
from carsearch.models.chat import ChatConversation, ChatMessage
from carsearch.models.dealers import Dealer
from carsearch.models.ingest import ScrapeRun, SourceState, VinDecode
from carsearch.models.listings import Listing, ListingPriceHistory, ListingSource
from carsearch.models.reference import Make, Model
from carsearch.models.users import SavedSearch, User, UserFavorite

__all__ = [
    "AuthRequest",
    "AuthSession",
    "ChatConversation",
    "ChatMessage",
    "Dealer",
    "Listing",
    "ListingAppraisal",
    "ListingPriceHistory",
    "ListingSource",
    "Make",
    "Model",
    "Notification",
    "RefreshToken",
    "SavedSearch",
    "ScrapeRun",
    "SearchQuery",
    "SourceState",
    "User",
    "UserFavorite",
    "VinDecode",
]
