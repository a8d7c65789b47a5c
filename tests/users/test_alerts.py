"""Alerts on seeded data: favorites' drops and sales, saved searches' new matches and drops,
no repeats, and delivery by webhook and e-mail to local servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from app_settings import settings_for_tests
from loopback import free_port, serving
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from carsearch.search.schemas import SearchFilters
from carsearch.search.service import SearchService
from carsearch.search.store import IndexReader, IndexStore
from carsearch.users.alerts import MAX_MATCHES_PER_SEARCH, run_alerts
from carsearch.users.delivery import deliver


@pytest.fixture
def search(search_index: Path) -> SearchService:
    return SearchService(IndexReader(IndexStore(search_index)))


@pytest.fixture
def until(search_index: Path) -> datetime:
    position = IndexStore(search_index).read_sync_state().position
    assert position is not None
    return position


async def make_user(db: AsyncSession) -> int:
    email = f"alerts-{uuid.uuid4().hex[:8]}@example.com"
    return int(
        (
            await db.execute(
                text("INSERT INTO users (email) VALUES (:e) RETURNING id"), {"e": email}
            )
        ).scalar_one()
    )


async def active_listing(db: AsyncSession, offset: int = 0) -> tuple[int, int]:
    row = (
        await db.execute(
            text(
                "SELECT id, price FROM listings WHERE status = 'active' AND price > 5000"
                " ORDER BY id OFFSET :o LIMIT 1"
            ),
            {"o": offset},
        )
    ).one()
    return int(row[0]), int(row[1])


async def notes(db: AsyncSession, user_id: int) -> list[Any]:
    return list(
        await db.execute(
            text(
                "SELECT kind, title, payload, dedupe_key FROM notifications"
                " WHERE user_id = :u ORDER BY id"
            ),
            {"u": user_id},
        )
    )


async def set_price(db: AsyncSession, listing_id: int, price: int) -> None:
    await db.execute(
        text("UPDATE listings SET price = :p WHERE id = :i"), {"p": price, "i": listing_id}
    )


async def test_a_favorite_price_drop_is_notified_once_even_when_the_price_flaps(
    db_session: AsyncSession, search: SearchService, until: datetime
) -> None:
    user = await make_user(db_session)
    listing_id, price = await active_listing(db_session)
    await db_session.execute(
        text(
            "INSERT INTO user_favorites (user_id, listing_id, saved_price, notified_price)"
            " VALUES (:u, :l, :p, :p)"
        ),
        {"u": user, "l": listing_id, "p": price},
    )
    now = datetime.now(UTC)
    await set_price(db_session, listing_id, price - 1000)
    await run_alerts(db_session, search, now=now, until=until)
    await run_alerts(db_session, search, now=now, until=until)  # nothing new
    await set_price(db_session, listing_id, price)  # back up
    await run_alerts(db_session, search, now=now, until=until)
    await set_price(db_session, listing_id, price - 1000)  # down to the same low again
    await run_alerts(db_session, search, now=now, until=until)
    found = await notes(db_session, user)
    assert [(n.kind, n.payload["drop"]) for n in found] == [("price_drop", 1000)]
    assert "$1,000 less" in found[0].title
    await set_price(db_session, listing_id, price - 1500)  # a new low
    await run_alerts(db_session, search, now=now, until=until)
    found = await notes(db_session, user)
    assert [n.payload["price"] for n in found] == [price - 1000, price - 1500]


async def test_a_sold_favorite_is_notified_once(
    db_session: AsyncSession, search: SearchService, until: datetime
) -> None:
    user = await make_user(db_session)
    listing_id, price = await active_listing(db_session, offset=1)
    await db_session.execute(
        text("INSERT INTO user_favorites (user_id, listing_id, saved_price) VALUES (:u, :l, :p)"),
        {"u": user, "l": listing_id, "p": price},
    )
    await db_session.execute(
        text("UPDATE listings SET status = 'sold', sold_at = now() WHERE id = :i"),
        {"i": listing_id},
    )
    for _ in range(2):
        await run_alerts(db_session, search, now=datetime.now(UTC), until=until)
    assert [n.kind for n in await notes(db_session, user)] == ["sold"]


async def add_saved_search(
    db: AsyncSession, user: int, filters: dict[str, Any], frequency: str, last: datetime
) -> int:
    return int(
        (
            await db.execute(
                text(
                    "INSERT INTO saved_searches (user_id, name, filters, alert_frequency,"
                    " last_alerted_at) VALUES (:u, 'test', CAST(:f AS jsonb), :q, :t) RETURNING id"
                ),
                {
                    "u": user,
                    "f": SearchFilters.model_validate(filters).model_dump_json(
                        exclude_defaults=True
                    ),
                    "q": frequency,
                    "t": last,
                },
            )
        ).scalar_one()
    )


async def test_saved_searches_announce_new_matches_when_due(
    db_session: AsyncSession, search: SearchService, until: datetime
) -> None:
    user = await make_user(db_session)
    since = until - timedelta(days=3)
    filters = {"condition": ["used"]}
    instant = await add_saved_search(db_session, user, filters, "instant", since)
    not_due = await add_saved_search(db_session, user, filters, "daily", until - timedelta(hours=2))
    _ids, expected = search.matching_ids(
        SearchFilters.model_validate(filters), None, first_seen_after=since, first_seen_until=until
    )
    assert expected > 0
    await run_alerts(db_session, search, now=datetime.now(UTC), until=until)
    found = [n for n in await notes(db_session, user) if n.kind == "new_match"]
    assert len(found) == min(expected, MAX_MATCHES_PER_SEARCH)
    assert {n.dedupe_key.split(":")[1] for n in found} == {str(instant)}
    assert found[0].payload["more_matches"] == max(0, expected - MAX_MATCHES_PER_SEARCH)
    # The window moved to the index's position: a second run finds nothing new.
    await run_alerts(db_session, search, now=datetime.now(UTC), until=until)
    assert len([n for n in await notes(db_session, user) if n.kind == "new_match"]) == len(found)
    last = (
        await db_session.execute(
            text("SELECT id, last_alerted_at FROM saved_searches WHERE user_id = :u ORDER BY id"),
            {"u": user},
        )
    ).all()
    assert dict(last)[instant] == until
    assert dict(last)[not_due] == until - timedelta(hours=2)  # daily, not due yet


async def test_a_matching_listing_whose_price_drops_is_announced(
    db_session: AsyncSession, search: SearchService, until: datetime
) -> None:
    user = await make_user(db_session)
    listing_id, price = await active_listing(db_session, offset=2)
    make = (
        await db_session.execute(text("SELECT make FROM listings WHERE id = :i"), {"i": listing_id})
    ).scalar_one()
    await add_saved_search(
        db_session, user, {"make": [make]}, "instant", until - timedelta(seconds=30)
    )
    await db_session.execute(
        text(
            "INSERT INTO listing_price_history (listing_id, price, observed_at) VALUES (:i, :p, :t)"
        ),
        {"i": listing_id, "p": price - 700, "t": until - timedelta(seconds=10)},
    )
    await set_price(db_session, listing_id, price - 700)
    await run_alerts(db_session, search, now=datetime.now(UTC), until=until)
    drops = [n for n in await notes(db_session, user) if n.kind == "price_drop"]
    assert len(drops) == 1
    assert drops[0].payload["price"] == price - 700


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, int]]]:
    received: list[dict[str, Any]] = []
    behaviour = {"status": 200}

    async def hook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({}, status_code=behaviour["status"])

    with serving(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as base:
        yield f"{base}/hook", received, behaviour


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


async def test_notifications_are_delivered_by_webhook_and_email_and_retried_on_failure(
    db_session: AsyncSession,
    webhook: tuple[str, list[dict[str, Any]], dict[str, int]],
) -> None:
    url, received, behaviour = webhook
    user = await make_user(db_session)
    await db_session.execute(
        text("UPDATE notifications SET delivered_at = now() WHERE delivered_at IS NULL")
    )
    for key in ("a", "b"):
        await db_session.execute(
            text(
                "INSERT INTO notifications (user_id, kind, title, dedupe_key)"
                " VALUES (:u, 'price_drop', :t, :k)"
            ),
            {"u": user, "t": f"drop {key}", "k": key},
        )
    mailbox = Mailbox()
    port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        settings = settings_for_tests(
            alert_webhook_url=url,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=False,
        )
        behaviour["status"] = 500
        failed = await deliver(db_session, settings)
        assert (failed.delivered, failed.failed) == (0, 2)
        behaviour["status"] = 200
        report = await deliver(db_session, settings)
        assert (report.delivered, report.failed) == (2, 0)
        assert (await deliver(db_session, settings)).delivered == 0  # nothing twice
    finally:
        smtp.stop()
    assert [n["title"] for n in received[-1]["notifications"]] == ["drop a", "drop b"]
    assert len(mailbox.messages) == 1
    assert b"drop a" in mailbox.messages[0].content
    attempts = (
        (
            await db_session.execute(
                text("SELECT delivery_attempts FROM notifications WHERE user_id = :u"), {"u": user}
            )
        )
        .scalars()
        .all()
    )
    assert attempts == [2, 2]
