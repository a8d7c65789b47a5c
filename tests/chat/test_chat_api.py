"""The assistant through the API, with the local provider on seeded data: JSON and
streamed answers, citations, follow-ups, history, owners, and a failing provider."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from app_settings import settings_for_tests
from fastapi import FastAPI
from httpx import AsyncClient

from carsearch.app import create_app
from carsearch.chat.citations import cite
from carsearch.chat.providers import Answer, ChatContext, ChatTools, ProviderFailed
from carsearch.chat.schemas import ShownListing
from carsearch.search.schemas import SearchFilters

CLIENT = {"X-Client-Id": "test-client-" + "a" * 20}


def listing(vin: str) -> ShownListing:
    return ShownListing(
        vin=vin,
        title="2021 Toyota RAV4",
        price=20000,
        mileage=1000,
        url=f"/api/v1/listings/{vin}",
        dealer=None,
        distance_miles=None,
        relevance=1.0,
    )


def test_markers_are_renumbered_and_markers_without_a_listing_removed() -> None:
    shown = [listing("A" * 17), listing("B" * 17)]
    text, citations = cite("Try [2], or [7] and [1]. Again [2].", shown)
    assert text == "Try [1], or and [2]. Again [1]."
    assert [(c.index, c.vin) for c in citations] == [(1, "B" * 17), (2, "A" * 17)]


async def ask(client: AsyncClient, message: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/chat", json={"message": message, **extra}, headers=CLIENT)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def test_an_answer_cites_real_listings_and_returns_its_filters(client: AsyncClient) -> None:
    data = await ask(client, "used suv under 30k")
    assert data["filters"]["body_style"] == ["suv"]
    assert data["filters"]["price_max"] == 30000
    assert data["citations"]
    for citation in data["citations"]:
        assert f"[{citation['index']}]" in data["answer"]
        detail = await client.get(citation["url"])
        assert detail.status_code == 200
        car = detail.json()["data"]
        assert car["body_style"] == "suv"
        assert car["price"] <= 30000


async def test_asking_for_deals_cites_the_best_priced_first(client: AsyncClient) -> None:
    data = await ask(client, "great deals on an suv")
    assert data["filters"]["deal_rating"] == ["great"]
    assert "great deals" in data["answer"]
    assert "a great deal" in data["answer"]  # each line says so
    assert {citation["deal"] for citation in data["citations"]} == {"great"}
    percents = []
    for citation in data["citations"]:
        deal = (await client.get(citation["url"])).json()["data"]["deal"]
        assert deal["rating"] == "great"
        percents.append(deal["percent"])
    assert percents
    assert percents == sorted(percents)  # furthest below market first


async def test_a_follow_up_adjusts_the_last_search(client: AsyncClient) -> None:
    first = await ask(client, "toyota under 40k")
    follow = await ask(client, "only awd", conversation_id=first["conversation_id"])
    assert follow["conversation_id"] == first["conversation_id"]
    assert follow["filters"]["make"] == ["Toyota"]
    assert follow["filters"]["drivetrain"] == ["awd"]
    history = await client.get(
        "/api/v1/chat/history",
        params={"conversation_id": first["conversation_id"]},
        headers=CLIENT,
    )
    messages = history.json()["data"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[3]["citations"] == follow["citations"]


async def test_the_stream_sends_text_then_citations_then_filters_then_done(
    client: AsyncClient,
) -> None:
    async with client.stream(
        "POST",
        "/api/v1/chat",
        json={"message": "honda civic"},
        headers={**CLIENT, "Accept": "text/event-stream"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join([chunk async for chunk in response.aiter_text()])
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1][6:]))
        for block in body.strip().split("\n\n")
    ]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "conversation"
    assert kinds[-3:] == ["citations", "filters", "done"]
    assert set(kinds[1:-3]) == {"delta"}
    streamed = "".join(data["text"] for kind, data in events if kind == "delta")
    assert streamed == events[-1][1]["answer"]
    assert events[-2][1]["make"] == ["Honda"]


async def test_conversations_belong_to_their_owner(client: AsyncClient) -> None:
    mine = await ask(client, "red coupe")
    other = {"X-Client-Id": "someone-else-" + "b" * 20}
    for response in (
        await client.get(
            "/api/v1/chat/history",
            params={"conversation_id": mine["conversation_id"]},
            headers=other,
        ),
        await client.post(
            "/api/v1/chat",
            json={"message": "cheaper", "conversation_id": mine["conversation_id"]},
            headers=other,
        ),
    ):
        assert response.status_code == 404
    deleted = await client.delete("/api/v1/chat/history", headers=other)
    assert deleted.json()["data"]["deleted"] == 0
    mine_deleted = await client.delete(
        "/api/v1/chat/history", params={"conversation_id": mine["conversation_id"]}, headers=CLIENT
    )
    assert mine_deleted.json()["data"]["deleted"] == 1


async def test_a_client_without_an_id_gets_one(client: AsyncClient) -> None:
    response = await client.post("/api/v1/chat", json={"message": "minivan"})
    assert response.status_code == 200
    issued = response.headers["x-client-id"]
    assert len(issued) >= 16
    assert "carsearch_client=" in response.headers["set-cookie"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 2001},
        {"message": "a\x00b"},
        {"message": "hi", "conversation_id": "not-an-id"},
        {"message": "hi", "extra": 1},
    ],
)
async def test_bad_requests_are_422(client: AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/api/v1/chat", json=body, headers=CLIENT)
    assert response.status_code == 422


async def test_an_unknown_conversation_is_404(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/chat",
        json={"message": "hi", "conversation_id": uuid.uuid4().hex},
        headers=CLIENT,
    )
    assert response.status_code == 404


class FailingProvider:
    name = "failing"

    async def reply(self, context: ChatContext, tools: ChatTools) -> AsyncIterator[Any]:
        await tools.search_listings(SearchFilters(), sort="newest", limit=1)  # type: ignore[arg-type]
        raise ProviderFailed("the assistant's service timed out")
        yield Answer("", [], SearchFilters())  # pragma: no cover


async def test_a_failing_provider_keeps_the_message_and_the_history_intact(
    app: FastAPI, client: AsyncClient
) -> None:
    first = await ask(client, "toyota")
    app.state.chat_service.provider = FailingProvider()
    failed = await client.post(
        "/api/v1/chat",
        json={"message": "cheaper", "conversation_id": first["conversation_id"]},
        headers=CLIENT,
    )
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "assistant_unavailable"
    history = (
        await client.get(
            "/api/v1/chat/history",
            params={"conversation_id": first["conversation_id"]},
            headers=CLIENT,
        )
    ).json()["data"]
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user"]
    assert history["messages"][-1]["content"] == "cheaper"
    assert history["filters"] == first["filters"]  # the search context is unchanged


@pytest.mark.parametrize("name", ["anthropic", "openai"])
def test_the_provider_is_chosen_by_setting_and_needs_a_key(name: str) -> None:
    app = create_app(settings_for_tests(chat_provider=name, chat_api_key="test-key"))
    assert app.state.chat_service.provider.name == name
    with pytest.raises(ValueError, match="CARSEARCH_CHAT_API_KEY"):
        settings_for_tests(chat_provider=name)


async def test_a_signed_in_users_conversation_is_theirs_and_uses_their_preferences(
    start_app: Any, search_index: Any
) -> None:
    async with start_app(search_index, auth_dev_login=True) as (_app, client):
        tokens = []
        for who in ("ann", "bob"):
            signed = await client.post(
                "/api/v1/auth/dev-login",
                json={"email": f"{who}-{uuid.uuid4().hex[:6]}@example.com"},
            )
            tokens.append({"Authorization": f"Bearer {signed.json()['data']['access_token']}"})
        ann, bob = tokens
        saved = await client.put(
            "/api/v1/user/profile",
            json={"preferences": {"home_zip": "10001", "radius": 100, "price_max": 40000}},
            headers=ann,
        )
        assert saved.status_code == 200
        answer = (await client.post("/api/v1/chat", json={"message": "toyota"}, headers=ann)).json()
        filters = answer["data"]["filters"]
        assert (filters["zip"], filters["radius"], filters["price_max"]) == ("10001", 100, 40000)
        conversation = {"conversation_id": answer["data"]["conversation_id"]}
        mine = await client.get("/api/v1/chat/history", params=conversation, headers=ann)
        assert mine.status_code == 200
        theirs = await client.get("/api/v1/chat/history", params=conversation, headers=bob)
        assert theirs.status_code == 404
        anonymous = await client.get("/api/v1/chat/history", params=conversation, headers=CLIENT)
        assert anonymous.status_code == 404
