"""/api/v1/user end to end: profile, favorites, saved searches and notifications, what another
user can reach of them (nothing), and the 401 of every way an access token can be wrong.

The app here is one of its own (dev sign-in on), committing to the shared test database:
users get unique e-mail addresses and are deleted after each test, and listings are the
seeded ones, never changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import Engine, text

from carsearch.auth.tokens import TokenIssuer

USER = "/api/v1/user"
EMAIL_DOMAIN = "user-api.test.example.com"


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    access_token: str
    refresh_token: str
    login: httpx.Response

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


SignIn = Callable[[], Awaitable[Account]]


@pytest.fixture
async def dev_app(start_app: Any, search_index: Path) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:
    async with start_app(search_index, auth_dev_login=True) as started:
        yield started


@pytest.fixture
def client(dev_app: tuple[FastAPI, AsyncClient]) -> AsyncClient:
    return dev_app[1]


@pytest.fixture
def sign_in(client: AsyncClient, sync_engine: Engine) -> Iterator[SignIn]:
    """Signs a new user in through dev-login; the users go (with all their rows) at the end."""
    emails: list[str] = []

    async def sign_in() -> Account:
        email = f"{uuid.uuid4().hex}@{EMAIL_DOMAIN}"
        emails.append(email)
        response = await client.post("/api/v1/auth/dev-login", json={"email": email})
        assert response.status_code == 200, response.text
        # The cookies are Secure and the client speaks http: they must not come back
        # unasked (tests send them explicitly).
        client.cookies.clear()
        data = response.json()["data"]
        return Account(
            data["user"]["id"], email, data["access_token"], data["refresh_token"], response
        )

    yield sign_in
    with sync_engine.begin() as connection:
        connection.execute(text("DELETE FROM users WHERE email = ANY(:e)"), {"e": emails})


def listings(sync_engine: Engine, status: str, count: int) -> list[tuple[str, int]]:
    """`count` seeded listings of `status` with a price, as (VIN, price)."""
    with sync_engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT vin, price FROM listings WHERE status = :status AND price IS NOT NULL"
                " ORDER BY id LIMIT :count"
            ),
            {"status": status, "count": count},
        ).all()
    assert len(rows) == count, f"the seed has fewer than {count} {status} listings"
    return [(row.vin, row.price) for row in rows]


def unknown_vin(sync_engine: Engine) -> str:
    with sync_engine.connect() as connection:
        for vin in ("1HGCM82633A004352", "JH4KA7561PC008269", "5YJ3E1EA7KF317000"):
            found = connection.execute(text("SELECT 1 FROM listings WHERE vin = :v"), {"v": vin})
            if found.first() is None:
                return vin
    raise AssertionError("every candidate VIN is in the seed")


def add_notifications(
    sync_engine: Engine, user_id: int, titles_oldest_first: list[str]
) -> list[int]:
    """Notifications for a user, an hour apart; returns their ids, oldest first."""
    start = datetime.now(UTC) - timedelta(hours=len(titles_oldest_first))
    ids = []
    with sync_engine.begin() as connection:
        for hour, title in enumerate(titles_oldest_first):
            ids.append(
                connection.execute(
                    text(
                        "INSERT INTO notifications"
                        " (user_id, kind, title, payload, dedupe_key, created_at)"
                        " VALUES (:user_id, 'price_drop', :title, CAST(:payload AS jsonb),"
                        " :dedupe_key, :created_at) RETURNING id"
                    ),
                    {
                        "user_id": user_id,
                        "title": title,
                        "payload": json.dumps({"title": title}),
                        "dedupe_key": uuid.uuid4().hex,
                        "created_at": start + timedelta(hours=hour),
                    },
                ).scalar_one()
            )
    return ids


def assert_refused(response: httpx.Response, status: int, words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert words in error["message"], error
    return error


# --- Profile -------------------------------------------------------------------------------


async def test_profile_name_and_preferences_round_trip(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine
) -> None:
    ann = await sign_in()
    fresh = (await client.get(f"{USER}/profile", headers=ann.headers)).json()["data"]
    assert (fresh["id"], fresh["email"], fresh["name"], fresh["preferences"]) == (
        ann.id,
        ann.email,
        None,
        {},
    )

    preferences = {
        "home_zip": "10001",
        "radius": 25,
        "favorite_makes": ["Toyota", " Honda ", "Toyota"],
        "body_styles": ["suv", "sedan"],
        "price_max": 30000,
    }
    response = await client.put(
        f"{USER}/profile",
        json={"name": "  Ann Lee ", "preferences": preferences},
        headers=ann.headers,
    )
    assert response.status_code == 200, response.text
    expected = {**preferences, "favorite_makes": ["Toyota", "Honda"]}
    assert response.json()["data"]["name"] == "Ann Lee"
    assert response.json()["data"]["preferences"] == expected
    again = (await client.get(f"{USER}/profile", headers=ann.headers)).json()["data"]
    assert (again["name"], again["preferences"]) == ("Ann Lee", expected)
    with sync_engine.connect() as connection:
        stored = connection.execute(
            text("SELECT name, preferences FROM users WHERE id = :id"), {"id": ann.id}
        ).one()
    assert (stored.name, stored.preferences) == ("Ann Lee", expected)

    # Preferences are replaced as a whole; a name left out stays.
    replaced = await client.put(
        f"{USER}/profile", json={"preferences": {"radius": 100}}, headers=ann.headers
    )
    assert replaced.json()["data"]["name"] == "Ann Lee"
    assert replaced.json()["data"]["preferences"] == {"radius": 100}


@pytest.mark.parametrize(
    ("body", "words", "loc"),
    [
        ({"preferences": {"colour": "red"}}, "colour", ["body", "preferences", "colour"]),
        ({"preferences": {"radius": 0}}, "greater than or equal to 1", None),
        ({"preferences": {"radius": 501}}, "less than or equal to 500", None),
        ({"preferences": {"home_zip": "00000"}}, "unknown ZIP code 00000", None),
        ({"preferences": {"home_zip": "1000"}}, "home_zip", None),
        ({"preferences": {"price_max": True}}, "expected a number", None),
        (
            {"preferences": {"body_styles": ["spaceship"]}},
            "should be 'sedan', 'suv'",
            ["body", "preferences", "body_styles", "0"],
        ),
        ({"preferences": {"favorite_makes": ["  "]}}, "1 to 64 characters", None),
        ({"name": "Ann\x00Lee"}, "invalid name", ["body", "name"]),
        ({"name": ""}, "invalid name", ["body", "name"]),
        ({"name": "x" * 201}, "invalid name", ["body", "name"]),
        ({"email": "other@example.com"}, "email", ["body", "email"]),
        ({"name": "   "}, "invalid name", ["body", "name"]),
    ],
)
async def test_a_bad_profile_change_is_a_422_and_changes_nothing(
    client: AsyncClient, sign_in: SignIn, body: dict[str, Any], words: str, loc: list[str] | None
) -> None:
    ann = await sign_in()
    await client.put(f"{USER}/profile", json={"name": "Ann"}, headers=ann.headers)
    error = assert_refused(
        await client.put(f"{USER}/profile", json=body, headers=ann.headers), 422, words
    )
    assert error["code"] == "validation_error"
    if loc is not None:
        assert error["details"][0]["loc"] == loc
    profile = (await client.get(f"{USER}/profile", headers=ann.headers)).json()["data"]
    assert (profile["name"], profile["preferences"]) == ("Ann", {})


# --- Favorites -----------------------------------------------------------------------------


async def test_saving_a_car_is_idempotent_and_shows_its_price_since(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine
) -> None:
    ann = await sign_in()
    [(vin, price)] = listings(sync_engine, "active", 1)

    first = await client.post(f"{USER}/favorites/{vin}", headers=ann.headers)
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"created": True}
    # The same car again, written as a person might: nothing changes.
    again = await client.post(f"{USER}/favorites/%20{vin.lower()}%20", headers=ann.headers)
    assert again.json()["data"] == {"created": False}

    listed = (await client.get(f"{USER}/favorites", headers=ann.headers)).json()
    [entry] = listed["data"]
    assert entry["listing"]["vin"] == vin
    assert entry["listing"]["status"] == "active"
    assert (entry["saved_price"], entry["price_change_since_saved"]) == (price, 0)
    assert listed["meta"]["pagination"] == {
        "page": 1,
        "page_size": 24,
        "total": 1,
        "total_pages": 1,
    }

    # Saved when it cost 1,500 more: it is 1,500 cheaper now. (The saved price is the
    # user's own row; the listing stays as seeded.)
    with sync_engine.begin() as connection:
        connection.execute(
            text("UPDATE user_favorites SET saved_price = :p WHERE user_id = :u"),
            {"p": price + 1500, "u": ann.id},
        )
    [entry] = (await client.get(f"{USER}/favorites", headers=ann.headers)).json()["data"]
    assert (entry["saved_price"], entry["price_change_since_saved"]) == (price + 1500, -1500)

    deleted = await client.delete(f"{USER}/favorites/{vin}", headers=ann.headers)
    assert deleted.json()["data"] == {"deleted": True}
    deleted_again = await client.delete(f"{USER}/favorites/{vin}", headers=ann.headers)
    assert deleted_again.status_code == 200
    assert deleted_again.json()["data"] == {"deleted": False}
    emptied = (await client.get(f"{USER}/favorites", headers=ann.headers)).json()
    assert emptied["data"] == []
    assert emptied["meta"]["pagination"]["total"] == 0


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_an_unknown_or_malformed_vin_is_refused(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine, method: str
) -> None:
    ann = await sign_in()
    missing = unknown_vin(sync_engine)
    refused = await client.request(method, f"{USER}/favorites/{missing}", headers=ann.headers)
    assert assert_refused(refused, 404, missing)["code"] == "not_found"
    for bad, words in [
        ("ABC123", "17 characters, this one has 6"),
        ("1HGCM82633A00435I", "never contains the letters I, O or Q"),
        ("1HGCM82633A00435-", "only the letters A-Z"),
    ]:
        refused = await client.request(method, f"{USER}/favorites/{bad}", headers=ann.headers)
        error = assert_refused(refused, 422, words)
        assert error["details"][0]["loc"] == ["path", "vin"]
    listed = (await client.get(f"{USER}/favorites", headers=ann.headers)).json()
    assert listed["data"] == []


async def test_a_sold_car_stays_among_favorites_marked_sold(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine
) -> None:
    ann = await sign_in()
    [(sold_vin, sold_price)] = listings(sync_engine, "sold", 1)
    [(active_vin, _price)] = listings(sync_engine, "active", 1)
    for vin in (sold_vin, active_vin):
        saved = await client.post(f"{USER}/favorites/{vin}", headers=ann.headers)
        assert saved.json()["data"] == {"created": True}
    entries = (await client.get(f"{USER}/favorites", headers=ann.headers)).json()["data"]
    by_vin = {entry["listing"]["vin"]: entry for entry in entries}
    assert by_vin.keys() == {sold_vin, active_vin}
    assert by_vin[sold_vin]["listing"]["status"] == "sold"
    assert by_vin[sold_vin]["saved_price"] == sold_price
    assert by_vin[active_vin]["listing"]["status"] == "active"


async def test_favorites_are_paginated_newest_first(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine
) -> None:
    ann = await sign_in()
    vins = [vin for vin, _price in listings(sync_engine, "active", 3)]
    for vin in vins:
        assert (await client.post(f"{USER}/favorites/{vin}", headers=ann.headers)).is_success

    first = await client.get(f"{USER}/favorites", params={"page_size": 2}, headers=ann.headers)
    second = await client.get(
        f"{USER}/favorites", params={"page_size": 2, "page": 2}, headers=ann.headers
    )
    beyond = await client.get(
        f"{USER}/favorites", params={"page_size": 2, "page": 3}, headers=ann.headers
    )
    pages = [page.json() for page in (first, second, beyond)]
    assert [[e["listing"]["vin"] for e in page["data"]] for page in pages] == [
        vins[:0:-1],
        vins[:1],
        [],
    ]
    assert [page["meta"]["pagination"] for page in pages] == [
        {"page": n, "page_size": 2, "total": 3, "total_pages": 2} for n in (1, 2, 3)
    ]
    bad_pages: list[tuple[str, int | str]] = [
        ("page_size", 0),
        ("page_size", 101),
        ("page", 0),
        ("page", "two"),
    ]
    for name, value in bad_pages:
        refused = await client.get(f"{USER}/favorites", params={name: value}, headers=ann.headers)
        assert_refused(refused, 422, f"invalid {name}")


# --- Saved searches ------------------------------------------------------------------------

AWD_UNDER_25K = {
    "make": ["Toyota", "Subaru"],
    "drivetrain": ["awd"],
    "condition": ["used", "cpo"],
    "price_max": 25000,
    "year_min": 2018,
    "zip": "10001",
    "radius": 75,
}


async def test_saved_searches_are_created_listed_and_deleted(
    client: AsyncClient, sign_in: SignIn
) -> None:
    ann = await sign_in()
    created = await client.post(
        f"{USER}/searches",
        json={"name": " AWD under 25k ", "filters": AWD_UNDER_25K, "alert_frequency": "instant"},
        headers=ann.headers,
    )
    assert created.status_code == 201, created.text
    awd = created.json()["data"]
    assert awd["name"] == "AWD under 25k"
    # As given, defaults (status, radius when not set) left out.
    assert awd["filters"] == AWD_UNDER_25K
    assert awd["alert_frequency"] == "instant"
    assert awd["last_alerted_at"] is not None

    hybrids = await client.post(
        f"{USER}/searches",
        json={"name": "Hybrids", "filters": {"fuel_type": ["hybrid"], "status": ["active"]}},
        headers=ann.headers,
    )
    assert hybrids.status_code == 201, hybrids.text
    assert hybrids.json()["data"]["filters"] == {"fuel_type": ["hybrid"]}
    assert hybrids.json()["data"]["alert_frequency"] == "daily"
    hybrids_id = hybrids.json()["data"]["id"]

    listed = (await client.get(f"{USER}/searches", headers=ann.headers)).json()["data"]
    assert [s["id"] for s in listed] == [hybrids_id, awd["id"]]
    assert listed[1] == awd

    deleted = await client.delete(f"{USER}/searches/{awd['id']}", headers=ann.headers)
    assert deleted.status_code == 200
    assert deleted.json()["data"] == {"deleted": True}
    again = await client.delete(f"{USER}/searches/{awd['id']}", headers=ann.headers)
    assert assert_refused(again, 404, f"no saved search {awd['id']}")["code"] == "not_found"
    listed = (await client.get(f"{USER}/searches", headers=ann.headers)).json()["data"]
    assert [s["id"] for s in listed] == [hybrids_id]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"name": "x", "filters": {"year_min": 2022, "year_max": 2020}},
            "year_min (2022) is greater than year_max (2020)",
        ),
        (
            {"name": "x", "filters": {"price_min": 30000, "price_max": 20000}},
            "price_min (30000) is greater than price_max (20000)",
        ),
        ({"name": "x", "filters": {"colour": ["red"]}}, "invalid colour"),
        ({"name": "x", "filters": {"zip": "00000"}}, "unknown ZIP code 00000"),
        ({"name": "x", "filters": {"zip": "1000"}}, "invalid zip"),
        ({"name": "x", "filters": {"make": "Toyota"}}, "invalid make"),
        ({"name": "x", "filters": {"drivetrain": ["hover"]}}, "invalid drivetrain"),
        ({"name": "x", "filters": {"price_max": True}}, "expected a number"),
        ({"name": "x", "filters": {"radius": 0}}, "invalid radius"),
        ({"name": "x", "filters": {"sort": "price_asc"}}, "invalid sort"),
        ({"name": "x", "filters": {}, "alert_frequency": "hourly"}, "invalid alert_frequency"),
        ({"name": "", "filters": {}}, "invalid name"),
        ({"name": "a\x00b", "filters": {}}, "invalid name"),
        ({"filters": {}}, "invalid name"),
        ({"name": "x"}, "invalid filters"),
        ({"name": "   ", "filters": {}}, "invalid name"),
    ],
)
async def test_a_bad_saved_search_is_a_422_and_saves_nothing(
    client: AsyncClient, sign_in: SignIn, body: dict[str, Any], words: str
) -> None:
    ann = await sign_in()
    refused = await client.post(f"{USER}/searches", json=body, headers=ann.headers)
    assert assert_refused(refused, 422, words)["code"] == "validation_error"
    assert (await client.get(f"{USER}/searches", headers=ann.headers)).json()["data"] == []


async def test_a_user_has_at_most_fifty_saved_searches(
    client: AsyncClient, sign_in: SignIn
) -> None:
    ann = await sign_in()
    for n in range(50):
        created = await client.post(
            f"{USER}/searches", json={"name": f"s{n}", "filters": {}}, headers=ann.headers
        )
        assert created.status_code == 201, created.text
    refused = await client.post(
        f"{USER}/searches", json={"name": "one too many", "filters": {}}, headers=ann.headers
    )
    assert assert_refused(refused, 409, "at most 50 saved searches")["code"] == "conflict"
    listed = (await client.get(f"{USER}/searches", headers=ann.headers)).json()["data"]
    assert len(listed) == 50
    # Deleting one makes room again.
    await client.delete(f"{USER}/searches/{listed[0]['id']}", headers=ann.headers)
    again = await client.post(
        f"{USER}/searches", json={"name": "now it fits", "filters": {}}, headers=ann.headers
    )
    assert again.status_code == 201


async def test_a_saved_search_id_out_of_range_is_a_422(
    client: AsyncClient, sign_in: SignIn
) -> None:
    ann = await sign_in()
    for search_id in ("0", str(2**62 + 1), "seven"):
        refused = await client.delete(f"{USER}/searches/{search_id}", headers=ann.headers)
        assert_refused(refused, 422, "invalid search_id")


# --- Notifications -------------------------------------------------------------------------


async def test_notifications_newest_first_paginated_and_marked_read(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine
) -> None:
    ann = await sign_in()
    oldest, middle, newest = add_notifications(sync_engine, ann.id, ["old", "middle", "new"])

    async def listed(**params: Any) -> dict[str, Any]:
        response = await client.get(f"{USER}/notifications", params=params, headers=ann.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    first = await listed(page_size=2)
    assert [n["id"] for n in first["data"]] == [newest, middle]
    assert first["data"][0]["title"] == "new"
    assert first["data"][0]["kind"] == "price_drop"
    assert first["data"][0]["payload"] == {"title": "new"}
    assert first["data"][0]["read_at"] is None
    assert first["meta"]["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2}
    assert [n["id"] for n in (await listed(page_size=2, page=2))["data"]] == [oldest]

    read = await client.post(
        f"{USER}/notifications/read", json={"ids": [middle]}, headers=ann.headers
    )
    assert read.json()["data"] == {"marked": 1}
    # Already read: nothing newly marked.
    read = await client.post(
        f"{USER}/notifications/read", json={"ids": [middle]}, headers=ann.headers
    )
    assert read.json()["data"] == {"marked": 0}
    unread = await listed(unread="true")
    assert [n["id"] for n in unread["data"]] == [newest, oldest]
    assert unread["meta"]["pagination"]["total"] == 2

    nothing = await client.post(f"{USER}/notifications/read", json={}, headers=ann.headers)
    assert nothing.json()["data"] == {"marked": 0}
    every = await client.post(f"{USER}/notifications/read", json={"all": True}, headers=ann.headers)
    assert every.json()["data"] == {"marked": 2}
    assert (await listed(unread="true"))["data"] == []
    everything = await listed()
    assert [n["id"] for n in everything["data"]] == [newest, middle, oldest]
    assert all(n["read_at"] is not None for n in everything["data"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"ids": [0]}, "invalid ids"),
        ({"ids": ["x"]}, "invalid ids"),
        ({"ids": [True]}, "expected a number"),
        ({"ids": 5}, "invalid ids"),
        ({"all": "yes"}, "expected true or false"),
        ({"all": 1}, "expected true or false"),
        ({"ids": [1], "everything": True}, "invalid everything"),
        ({"ids": list(range(1, 502))}, "invalid ids"),
    ],
)
async def test_a_bad_mark_read_request_is_a_422(
    client: AsyncClient, sign_in: SignIn, body: dict[str, Any], words: str
) -> None:
    ann = await sign_in()
    refused = await client.post(f"{USER}/notifications/read", json=body, headers=ann.headers)
    assert_refused(refused, 422, words)


# --- One user, another user --------------------------------------------------------------


async def test_another_user_can_neither_see_nor_change_a_users_data(
    client: AsyncClient, sign_in: SignIn, sync_engine: Engine
) -> None:
    ann, bob = await sign_in(), await sign_in()
    [(vin, _price)] = listings(sync_engine, "active", 1)
    await client.put(f"{USER}/profile", json={"name": "Ann"}, headers=ann.headers)
    assert (await client.post(f"{USER}/favorites/{vin}", headers=ann.headers)).is_success
    saved = await client.post(
        f"{USER}/searches", json={"name": "Ann's", "filters": {}}, headers=ann.headers
    )
    search_id = saved.json()["data"]["id"]
    [notification] = add_notifications(sync_engine, ann.id, ["for Ann"])

    # Bob sees none of it...
    profile = (await client.get(f"{USER}/profile", headers=bob.headers)).json()["data"]
    assert (profile["id"], profile["email"], profile["name"]) == (bob.id, bob.email, None)
    for path in ("favorites", "searches", "notifications"):
        assert (await client.get(f"{USER}/{path}", headers=bob.headers)).json()["data"] == []
    # ... and changes none of it: his own profile, his own (absent) favorite, a saved search
    # that is not his is one that does not exist, notifications not his are left alone.
    await client.put(f"{USER}/profile", json={"name": "Bob"}, headers=bob.headers)
    forgot = await client.delete(f"{USER}/favorites/{vin}", headers=bob.headers)
    assert forgot.json()["data"] == {"deleted": False}
    refused = await client.delete(f"{USER}/searches/{search_id}", headers=bob.headers)
    assert_refused(refused, 404, f"no saved search {search_id}")
    for body in ({"ids": [notification]}, {"all": True}):
        marked = await client.post(f"{USER}/notifications/read", json=body, headers=bob.headers)
        assert marked.json()["data"] == {"marked": 0}

    # Ann's data is as she left it.
    profile = (await client.get(f"{USER}/profile", headers=ann.headers)).json()["data"]
    assert profile["name"] == "Ann"
    favorites = (await client.get(f"{USER}/favorites", headers=ann.headers)).json()["data"]
    assert [f["listing"]["vin"] for f in favorites] == [vin]
    searches = (await client.get(f"{USER}/searches", headers=ann.headers)).json()["data"]
    assert [s["id"] for s in searches] == [search_id]
    notes = (await client.get(f"{USER}/notifications", headers=ann.headers)).json()["data"]
    assert [(n["id"], n["read_at"]) for n in notes] == [(notification, None)]


# --- Tokens --------------------------------------------------------------------------------

EVERY_ENDPOINT = [
    ("GET", "profile", None),
    ("PUT", "profile", {"name": "Mallory"}),
    ("GET", "favorites", None),
    ("POST", "favorites/1HGCM82633A004352", None),
    ("DELETE", "favorites/1HGCM82633A004352", None),
    ("GET", "searches", None),
    ("POST", "searches", {"name": "x", "filters": {}}),
    ("DELETE", "searches/1", None),
    ("GET", "notifications", None),
    ("POST", "notifications/read", {"all": True}),
]


def assert_challenged(response: httpx.Response, reason: str) -> None:
    assert_refused(response, 401, reason)
    assert response.json()["error"]["code"] == "unauthorized"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="carsearch"'), challenge
    if reason.startswith("missing"):
        # RFC 6750 3.1: no error code when the request carried no token at all.
        assert challenge == 'Bearer realm="carsearch"'
    else:
        assert 'error="invalid_token"' in challenge
        assert reason in challenge


@pytest.mark.parametrize(("method", "path", "body"), EVERY_ENDPOINT)
async def test_every_endpoint_needs_a_token(
    client: AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, f"{USER}/{path}", json=body)
    assert_challenged(response, "missing access token")


def app_key(app: FastAPI) -> OctKey:
    # The same derivation as TokenIssuer: the secret itself never signs.
    secret: str = app.state.settings.secret_key
    return OctKey.import_key(
        hmac.new(secret.encode(), b"carsearch access tokens", hashlib.sha256).digest()
    )


def claims_of(app: FastAPI, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, app_key(app), algorithms=["HS256"]).claims
    return claims


def refresh_typed_token(app: FastAPI, account: Account) -> str:
    claims = {**claims_of(app, account.access_token), "type": "refresh"}
    return jwt.encode({"alg": "HS256"}, claims, app_key(app), algorithms=["HS256"])


def issued(secret: str, account: Account, app: FastAPI, now: datetime) -> str:
    sid = claims_of(app, account.access_token)["sid"]
    token, _expires = TokenIssuer(secret, 15).access_token(account.id, sid, now)
    return token


@pytest.mark.parametrize(
    ("make_authorization", "reason"),
    [
        (lambda app, ann: "Bearer not-a-jwt", "malformed token"),
        (lambda app, ann: "Bearer a.b.c", "malformed token"),
        (lambda app, ann: "Bearer ", "use the Bearer scheme"),
        (lambda app, ann: "Basic YW5uOnNlY3JldA==", "use the Bearer scheme"),
        (lambda app, ann: f"Token {ann.access_token}", "use the Bearer scheme"),
        (
            lambda app, ann: (
                "Bearer "
                + issued("another-secret-key-of-32-characters!", ann, app, datetime.now(UTC))
            ),
            "token signature invalid",
        ),
        (
            lambda app, ann: (
                "Bearer "
                + issued(
                    app.state.settings.secret_key, ann, app, datetime.now(UTC) - timedelta(hours=1)
                )
            ),
            "token expired",
        ),
        (lambda app, ann: f"Bearer {refresh_typed_token(app, ann)}", "not an access token"),
    ],
    ids=[
        "garbage",
        "three-parts",
        "empty",
        "basic",
        "other-scheme",
        "foreign-key",
        "expired",
        "refresh-type",
    ],
)
async def test_a_bad_token_is_a_401_with_a_bearer_challenge(
    dev_app: tuple[FastAPI, AsyncClient],
    sign_in: SignIn,
    make_authorization: Callable[[FastAPI, Account], str],
    reason: str,
) -> None:
    app, client = dev_app
    ann = await sign_in()
    # The account and its session are fine: only the token is wrong.
    assert (await client.get(f"{USER}/profile", headers=ann.headers)).status_code == 200
    authorization = make_authorization(app, ann)
    for method, path, body in EVERY_ENDPOINT:
        response = await client.request(
            method, f"{USER}/{path}", json=body, headers={"Authorization": authorization}
        )
        assert_challenged(response, reason)


async def test_a_token_of_a_signed_out_session_is_a_401(
    client: AsyncClient, sign_in: SignIn
) -> None:
    ann = await sign_in()
    other_device = await sign_in()
    signed_out = await client.post("/api/v1/auth/logout", headers=ann.headers)
    assert signed_out.json()["data"] == {"signed_out": True}
    for method, path, body in EVERY_ENDPOINT:
        response = await client.request(method, f"{USER}/{path}", json=body, headers=ann.headers)
        assert_challenged(response, "session signed out")
    # Only that session: another one is unaffected.
    assert (await client.get(f"{USER}/profile", headers=other_device.headers)).status_code == 200


async def test_the_access_cookie_works_and_the_header_wins(
    client: AsyncClient, sign_in: SignIn
) -> None:
    ann, bob = await sign_in(), await sign_in()
    cookie = {"Cookie": f"carsearch_access={ann.access_token}"}
    profile = await client.get(f"{USER}/profile", headers=cookie)
    assert profile.json()["data"]["id"] == ann.id
    both = await client.get(f"{USER}/profile", headers={**cookie, **bob.headers})
    assert both.json()["data"]["id"] == bob.id


def set_cookie(response: httpx.Response, name: str) -> tuple[str, list[str]]:
    """The value and attributes of the Set-Cookie of `name`."""
    for header in response.headers.get_list("set-cookie"):
        pair, *attributes = [part.strip() for part in header.split(";")]
        key, _, value = pair.partition("=")
        if key == name:
            return value, attributes
    raise AssertionError(f"no Set-Cookie for {name}")


async def test_a_browser_refreshes_with_the_refresh_cookie(
    client: AsyncClient, sign_in: SignIn
) -> None:
    ann = await sign_in()
    refresh, attributes = set_cookie(ann.login, "carsearch_refresh")
    assert refresh == ann.refresh_token
    assert "Path=/api/v1/auth" in attributes
    assert {"HttpOnly", "Secure", "SameSite=lax"} <= set(attributes)
    _access, access_attributes = set_cookie(ann.login, "carsearch_access")
    assert "Path=/api" in access_attributes

    # No body: the cookie is the token.
    refreshed = await client.post(
        "/api/v1/auth/refresh", headers={"Cookie": f"carsearch_refresh={refresh}"}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["cache-control"] == "no-store"
    data = refreshed.json()["data"]
    assert data["user"]["id"] == ann.id
    assert data["refresh_token"] != refresh
    new_refresh, _attributes = set_cookie(refreshed, "carsearch_refresh")
    assert new_refresh == data["refresh_token"]
    client.cookies.clear()
    profile = await client.get(
        f"{USER}/profile", headers={"Authorization": f"Bearer {data['access_token']}"}
    )
    assert profile.json()["data"]["id"] == ann.id

    # The used cookie again: replayed, so the session goes.
    replay = await client.post(
        "/api/v1/auth/refresh", headers={"Cookie": f"carsearch_refresh={refresh}"}
    )
    assert_challenged(replay, "already used")
    client.cookies.clear()
    none = await client.post("/api/v1/auth/refresh")
    assert_challenged(none, "missing refresh token")
