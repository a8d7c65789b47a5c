"""/api/v1/chat: the assistant. Signed-in users' conversations are theirs; anonymous ones
belong to an opaque client id (the `X-Client-Id` header or the `carsearch_client` cookie,
issued on first use)."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from carsearch.auth.routes import bearer_token, get_auth_service
from carsearch.auth.service import AuthService
from carsearch.chat.schemas import ChatAnswer, ChatHistory, ChatRequest
from carsearch.chat.service import ChatService, Owner
from carsearch.deps import DbSession
from carsearch.errors import CarSearchError
from carsearch.schemas import Envelope, error_responses

router = APIRouter(prefix="/chat", tags=["chat"])

CLIENT_COOKIE = "carsearch_client"
CLIENT_HEADER = "x-client-id"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ConversationId = Annotated[
    str,
    Query(
        pattern=r"^[0-9a-f]{32}$",
        description="The conversation.",
        examples=["3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d"],
    ),
]


def get_chat_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat_service
    return service


Chat = Annotated[ChatService, Depends(get_chat_service)]
Auth = Annotated[AuthService, Depends(get_auth_service)]


async def _owner(request: Request, db: AsyncSession, auth: AuthService) -> tuple[Owner, bool]:
    """Who is chatting, and whether a new client id was issued."""
    token = bearer_token(request)
    if token:
        return Owner(await auth.user_for_access_token(db, token), None), False
    client_id = request.headers.get(CLIENT_HEADER) or request.cookies.get(CLIENT_COOKIE)
    if client_id and _CLIENT_ID.match(client_id):
        return Owner(None, client_id), False
    return Owner(None, secrets.token_urlsafe(24)), True


def _remember_client(response: Response, owner: Owner, issued: bool) -> None:
    if issued and owner.client_id:
        response.headers["X-Client-Id"] = owner.client_id
        response.set_cookie(
            CLIENT_COOKIE, owner.client_id, max_age=30 * 86_400, httponly=True, samesite="lax"
        )


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


@router.post(
    "",
    response_model=Envelope[ChatAnswer],
    responses={
        200: {
            "description": "The answer; with `Accept: text/event-stream`, a stream of events: "
            "`delta` (text), `citations`, `filters`, then `done` (or `error`).",
            "content": {"text/event-stream": {}},
        },
        **error_responses(400, 401, 404, 422, 502, 503),
    },
    summary="Ask the assistant",
)
async def chat(request: Request, auth: Auth, chat: Chat, body: ChatRequest) -> Response:
    """Answers with real listings, each cited by an [n] marker, and the filters used."""
    # A session of its own: a streamed answer outlives the request's dependencies.
    db: AsyncSession = request.app.state.sessionmaker()
    try:
        owner, issued = await _owner(request, db, auth)
        turn = chat.turn(db, owner, body)
        _kind, conversation_id = await anext(turn)  # 404, and the message stored, here
    except BaseException:
        await db.close()
        raise
    if "text/event-stream" in request.headers.get("accept", ""):

        async def events() -> AsyncIterator[bytes]:
            yield _sse("conversation", {"conversation_id": conversation_id})
            try:
                async for kind, value in turn:
                    if kind == "delta":
                        yield _sse("delta", {"text": value})
                    else:
                        answer: ChatAnswer = value
                        yield _sse(
                            "citations",
                            [c.model_dump(mode="json") for c in answer.citations],
                        )
                        yield _sse("filters", answer.filters)
                        yield _sse(
                            "done", {"conversation_id": conversation_id, "answer": answer.answer}
                        )
            except CarSearchError as exc:
                yield _sse(
                    "error",
                    {"status": exc.status_code, "code": exc.code, "message": exc.message},
                )
            finally:
                await db.close()

        streamed = StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )
        _remember_client(streamed, owner, issued)
        return streamed
    answer: ChatAnswer | None = None
    try:
        async for kind, value in turn:
            if kind == "answer":
                answer = value
    finally:
        await db.close()
    assert answer is not None
    response = JSONResponse(Envelope(data=answer).model_dump(mode="json"))
    _remember_client(response, owner, issued)
    return response


@router.get(
    "/history",
    response_model=Envelope[ChatHistory],
    responses=error_responses(401, 404, 422),
    summary="A conversation's messages",
)
async def history(
    request: Request, db: DbSession, auth: Auth, chat: Chat, conversation_id: ConversationId
) -> Envelope[ChatHistory]:
    """Oldest first, with each answer's citations and filters. Only its owner may read it."""
    owner, _issued = await _owner(request, db, auth)
    return Envelope(data=await chat.history(db, owner, conversation_id))


@router.delete(
    "/history",
    response_model=Envelope[dict[str, int]],
    responses=error_responses(401, 422),
    summary="Forget conversations",
)
async def forget(
    request: Request,
    db: DbSession,
    auth: Auth,
    chat: Chat,
    conversation_id: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{32}$",
            description="Only this one; omitted, all of yours.",
            examples=["3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d"],
        ),
    ] = None,
) -> Envelope[dict[str, int]]:
    """Deletes your conversations (or one of them) with their messages."""
    owner, _issued = await _owner(request, db, auth)
    return Envelope(data={"deleted": await chat.forget(db, owner, conversation_id)})
