"""Rate limits: the GCRA arithmetic, both backends, rules and groups, and the middleware."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient
from redis import Redis
from redis_for_tests import redis_url
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Scope

from carsearch.ratelimit import (
    ClientIpIdentity,
    MemoryLimiter,
    RateLimit,
    RateLimiter,
    RateLimitMiddleware,
    RateLimitRules,
    RedisLimiter,
    client_ip_identity,
    create_limiter,
    parse_rules,
    route_group,
)

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
async def redis_limiter() -> AsyncIterator[RedisLimiter]:
    limiter = RedisLimiter(redis_url(), key_prefix=f"test:ratelimit:{uuid.uuid4().hex}")
    yield limiter
    await limiter.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- Backends ---------------------------------------------------------------------------


async def test_memory_limiter_allows_a_burst_then_refills_evenly() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock=clock)
    rule = RateLimit(3, 3.0)  # one request back every second

    burst = [await limiter.hit("k", rule) for _ in range(3)]
    assert [d.allowed for d in burst] == [True, True, True]
    assert [d.remaining for d in burst] == [2, 1, 0]
    assert [d.reset_after_seconds for d in burst] == [1.0, 2.0, 3.0]
    assert {d.limit for d in burst} == {3}

    refused = await limiter.hit("k", rule)
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert refused.retry_after_seconds == pytest.approx(1.0)
    assert refused.reset_after_seconds == pytest.approx(3.0)

    clock.advance(0.5)
    assert (await limiter.hit("k", rule)).retry_after_seconds == pytest.approx(0.5)
    clock.advance(0.5)
    again = await limiter.hit("k", rule)
    assert (again.allowed, again.remaining) == (True, 0)

    clock.advance(3.0)  # idle for a period: the whole quota is back
    assert (await limiter.hit("k", rule)).remaining == 2
    assert limiter.stats.as_dict() == {"allowed": 5, "refused": 2, "unchecked": 0, "errors": 0}


async def test_memory_limiter_keeps_keys_apart_and_memory_bounded() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(max_keys=3, clock=clock)
    rule = RateLimit(1, 10.0)
    assert (await limiter.hit("a", rule)).allowed
    assert not (await limiter.hit("a", rule)).allowed
    assert (await limiter.hit("b", rule)).allowed  # another caller, another bucket

    for key in ("c", "d", "e"):
        await limiter.hit(key, rule)
    assert len(limiter) == 3  # the least recently used keys were forgotten
    assert (await limiter.hit("a", rule)).allowed

    clock.advance(10.0)  # everyone is idle: their keys go as the table is visited
    await limiter.hit("f", rule)
    assert len(limiter) == 1


async def test_memory_limiter_counts_exactly_across_threads() -> None:
    limiter = MemoryLimiter()
    rule = RateLimit(100, 60.0)
    allowed: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        async def hits() -> list[bool]:
            return [(await limiter.hit("shared", rule)).allowed for _ in range(50)]

        results = asyncio.run(hits())
        with lock:
            allowed.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (allowed.count(True), allowed.count(False)) == (100, 300)


async def test_redis_limiter_allows_a_burst_refills_and_expires_keys(
    redis_limiter: RedisLimiter,
) -> None:
    rule = RateLimit(3, 0.6)  # one request back every 0.2 s
    burst = [await redis_limiter.hit("k", rule) for _ in range(3)]
    assert [(d.allowed, d.remaining) for d in burst] == [(True, 2), (True, 1), (True, 0)]
    refused = await redis_limiter.hit("k", rule)
    assert (refused.allowed, refused.remaining) == (False, 0)
    assert 0 < refused.retry_after_seconds <= 0.2
    assert 0.4 < refused.reset_after_seconds <= 0.6

    key = f"{redis_limiter.key_prefix}:k"
    with Redis.from_url(redis_url()) as check:
        assert 0 < check.pttl(key) <= 600  # gone once the quota is full again
        await asyncio.sleep(refused.retry_after_seconds + 0.02)
        assert (await redis_limiter.hit("k", rule)).allowed
        await asyncio.sleep(0.65)
        assert check.exists(key) == 0
    assert (await redis_limiter.hit("k", rule)).remaining == 2
    assert redis_limiter.stats.as_dict() == {
        "allowed": 5,
        "refused": 1,
        "unchecked": 0,
        "errors": 0,
    }


async def test_redis_limits_are_shared_by_every_process(redis_limiter: RedisLimiter) -> None:
    other = RedisLimiter(redis_url(), key_prefix=redis_limiter.key_prefix)
    try:
        rule = RateLimit(3, 60.0)
        assert (await redis_limiter.hit("k", rule)).allowed
        assert (await other.hit("k", rule)).allowed
        assert (await redis_limiter.hit("k", rule)).remaining == 0
        assert not (await other.hit("k", rule)).allowed
        assert (await other.hit("another", rule)).allowed
    finally:
        await other.close()


async def test_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RedisLimiter(DEAD_REDIS, rest_after_failure_seconds=0.2)
    rule = RateLimit(1, 60.0)
    started = time.perf_counter()
    try:
        with caplog.at_level(logging.WARNING, logger="carsearch.ratelimit"):
            decisions = [await limiter.hit("k", rule) for _ in range(3)]
            await asyncio.sleep(0.25)  # the rest is over: Redis is tried again
            decisions.append(await limiter.hit("k", rule))
    finally:
        await limiter.close()
    assert time.perf_counter() - started < 2
    assert all(d.allowed and not d.checked for d in decisions)
    assert limiter.stats.as_dict() == {"allowed": 0, "refused": 0, "unchecked": 4, "errors": 2}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # not one per failure
    assert "requests pass unchecked" in warnings[0].getMessage()


def test_create_limiter_picks_the_backend() -> None:
    assert isinstance(create_limiter(None), MemoryLimiter)
    assert isinstance(create_limiter(""), MemoryLimiter)
    assert isinstance(create_limiter(DEAD_REDIS), RedisLimiter)


# --- Rules and groups -------------------------------------------------------------------


def test_parse_rules_reads_the_settings_string() -> None:
    assert parse_rules("search=120/60,auth=10/60,user=60/60,default=300/60") == {
        "search": RateLimit(120, 60),
        "auth": RateLimit(10, 60),
        "user": RateLimit(60, 60),
        "default": RateLimit(300, 60),
    }
    assert parse_rules(" chat = 5 / 0.5 , ") == {"chat": RateLimit(5, 0.5)}
    assert parse_rules("") == parse_rules("  ") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("search", "expected <group>=<requests>/<seconds>"),
        ("search=120", "expected <group>=<requests>/<seconds>"),
        ("serach=120/60", "unknown group 'serach'; groups are search, auth, user, chat, default"),
        ("=120/60", "unknown group ''"),
        ("auth=10/60,auth=20/60", "group 'auth' is given twice"),
        ("search=120/60,,auth=10/60", "empty rule between commas"),
        ("search=abc/60", "requests must be a whole number, not 'abc'"),
        ("search=1.5/60", "requests must be a whole number, not '1.5'"),
        ("search=-1/60", "requests must be a whole number, not '-1'"),
        ("search=0/60", "limit must be between 1 and 1000000, not 0"),
        ("search=120/1m", "period must be a number of seconds, not '1m'"),
        ("search=120/0", "period must be a positive number of seconds, not 0.0"),
        ("search=120/nan", "period must be a positive number of seconds, not nan"),
        ("search=120/100000", "period must be at most 86400 seconds, not 100000"),
        ("search=1000000/0.5", "more than one request per microsecond"),
    ],
)
def test_parse_rules_explains_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="rate limit") as raised:
        parse_rules(text)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/api/v1/auth/login", "auth"),
        ("/api/v1/auth", "auth"),
        ("/api/v1/user/favorites", "user"),
        ("/api/v1/chat", "chat"),
        ("/api/v1/chat/messages", "chat"),
        ("/api/v1/listings", "search"),
        ("/api/v1/listings/1HGCM82633A004352/history", "search"),
        ("/api/v1/facets", "search"),
        ("/api/v1/filters", "search"),
        ("/api/v1/dealers/42", "search"),
        ("/api/v1/search/status", "default"),
        ("/api/v1/authority", "default"),
        ("/api/v2/auth/login", "default"),
        ("/", "default"),
        ("/healthz", None),
        ("/readyz", None),
        ("/metrics", None),
        ("/docs", None),
        ("/redoc", None),
        ("/openapi.json", None),
        ("/docs-assets/swagger-ui.css", None),
    ],
)
def test_route_groups(path: str, group: str | None) -> None:
    assert route_group(path) == group


def test_a_group_without_a_limit_shares_the_default_one() -> None:
    rules = RateLimitRules.parse("search=120/60,default=300/60")
    assert rules.for_path("/api/v1/listings") == ("search", RateLimit(120, 60))
    assert rules.for_path("/api/v1/chat") == ("default", RateLimit(300, 60))
    assert rules.for_path("/healthz") is None
    assert RateLimitRules.parse("search=120/60").for_path("/api/v1/chat") is None


def _scope(client: tuple[str, int] | None, forwarded_for: str | None = None) -> Scope:
    headers = [(b"x-forwarded-for", forwarded_for.encode())] if forwarded_for else []
    return {"type": "http", "client": client, "headers": headers}


def test_client_ip_identity_trusts_forwarded_for_only_from_trusted_proxies() -> None:
    spoofed = _scope(("203.0.113.9", 5000), "198.51.100.1")
    assert client_ip_identity(spoofed) == "ip:203.0.113.9"
    assert client_ip_identity(_scope(None)) == "ip:unknown"

    behind_proxies = ClientIpIdentity(["10.0.0.0/8", "192.0.2.1"])
    # The nearest address not ours is the client; what it claimed further left is not.
    chain = _scope(("10.0.0.5", 5000), "198.51.100.1, 203.0.113.7, 192.0.2.1")
    assert behind_proxies(chain) == "ip:203.0.113.7"
    assert behind_proxies(_scope(("10.0.0.5", 5000))) == "ip:10.0.0.5"
    assert behind_proxies(_scope(("10.0.0.5", 5000), "not-an-ip")) == "ip:10.0.0.5"
    assert behind_proxies(_scope(("203.0.113.9", 5000), "198.51.100.1")) == "ip:203.0.113.9"
    assert behind_proxies(_scope(("10.0.0.5", 5000), " 2001:db8::1 ")) == "ip:2001:db8::1"


# --- Middleware -------------------------------------------------------------------------


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"data": request.url.path})


def _identify_by_user_header(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-user":
            return f"user:{value.decode()}"
    return client_ip_identity(scope)


def _limited_client(
    limiter: RateLimiter,
    rules: Mapping[str, RateLimit] | RateLimitRules,
    identify: Any = _identify_by_user_header,
    client: tuple[str, int] = ("127.0.0.1", 123),
) -> AsyncClient:
    paths = [
        "/api/v1/listings",
        "/api/v1/auth/login",
        "/healthz",
        "/openapi.json",
        "/docs-assets/swagger-ui.css",
    ]
    app = Starlette(routes=[Route(path, _ok, methods=["GET", "OPTIONS"]) for path in paths])
    limited = RateLimitMiddleware(app, limiter=limiter, rules=rules, identify=identify)
    return AsyncClient(transport=ASGITransport(app=limited, client=client), base_url="http://t")


RULES = {"search": RateLimit(2, 60.0), "auth": RateLimit(1, 60.0)}


async def test_every_limited_response_carries_the_ratelimit_headers() -> None:
    async with _limited_client(MemoryLimiter(), RULES) as client:
        first = await client.get("/api/v1/listings")
        assert first.status_code == 200
        assert first.json() == {"data": "/api/v1/listings"}
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        assert first.headers["ratelimit-reset"] == "30"
        assert "retry-after" not in first.headers
        second = await client.get("/api/v1/listings")
        assert (second.headers["ratelimit-remaining"], second.headers["ratelimit-reset"]) == (
            "0",
            "60",
        )


async def test_over_the_limit_is_a_429_envelope_with_retry_after() -> None:
    async with _limited_client(MemoryLimiter(), RULES) as client:
        for _ in range(2):
            assert (await client.get("/api/v1/listings")).status_code == 200
        refused = await client.get("/api/v1/listings")
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/json"
    assert refused.json() == {
        "error": {
            "code": "rate_limited",
            "message": "too many requests; retry in 30 s",
            "details": [{"group": "search", "limit": 2, "period_seconds": 60.0}],
        }
    }
    assert refused.headers["retry-after"] == "30"
    assert refused.headers["ratelimit-limit"] == "2"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-reset"] == "60"


async def test_retry_after_is_at_least_one_second() -> None:
    async with _limited_client(MemoryLimiter(), {"search": RateLimit(10, 0.5)}) as client:
        statuses = [(await client.get("/api/v1/listings")).status_code for _ in range(11)]
        refused = await client.get("/api/v1/listings")
    assert statuses == [200] * 10 + [429]
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["message"] == "too many requests; retry in 1 s"


async def test_callers_and_route_groups_have_separate_buckets() -> None:
    async with _limited_client(MemoryLimiter(), RULES) as client:
        assert (await client.get("/api/v1/auth/login", headers={"x-user": "1"})).status_code == 200
        refused = await client.get("/api/v1/auth/login", headers={"x-user": "1"})
        assert refused.status_code == 429
        assert refused.json()["error"]["details"][0]["group"] == "auth"
        # Another user, and the same user's searches, are counted apart.
        assert (await client.get("/api/v1/auth/login", headers={"x-user": "2"})).status_code == 200
        searched = await client.get("/api/v1/listings", headers={"x-user": "1"})
        assert (searched.status_code, searched.headers["ratelimit-remaining"]) == (200, "1")
        # Without a user, the client address is the caller.
        assert (await client.get("/api/v1/auth/login")).status_code == 200


async def test_each_client_address_has_its_own_bucket() -> None:
    limiter = MemoryLimiter()
    async with _limited_client(limiter, RULES, client_ip_identity) as client:
        assert (await client.get("/api/v1/auth/login")).status_code == 200
        assert (await client.get("/api/v1/auth/login")).status_code == 429
    other = ("198.51.100.7", 4000)
    async with _limited_client(limiter, RULES, client_ip_identity, client=other) as client:
        assert (await client.get("/api/v1/auth/login")).status_code == 200
        assert (await client.get("/api/v1/auth/login")).status_code == 429


async def test_operational_paths_and_preflights_are_never_limited() -> None:
    rules = {"default": RateLimit(1, 60.0), "search": RateLimit(1, 60.0)}
    async with _limited_client(MemoryLimiter(), rules) as client:
        for path in ("/healthz", "/openapi.json", "/docs-assets/swagger-ui.css"):
            for _ in range(3):
                response = await client.get(path)
                assert response.status_code == 200
                assert "ratelimit-limit" not in response.headers
        for _ in range(3):
            preflight = await client.options("/api/v1/listings")
            assert preflight.status_code == 200
            assert "ratelimit-limit" not in preflight.headers
        assert (await client.get("/api/v1/listings")).status_code == 200


async def test_async_and_failing_identify() -> None:
    async def identify_async(scope: Scope) -> str:
        return "user:7"

    def identify_broken(scope: Scope) -> str:
        raise RuntimeError("bad token parser")

    limiter = MemoryLimiter()
    async with _limited_client(limiter, RULES, identify_async) as client:
        await client.get("/api/v1/auth/login")
    async with _limited_client(limiter, RULES, identify_broken) as client:
        # Counted by address instead of failing the request.
        assert (await client.get("/api/v1/auth/login")).status_code == 200
        assert (await client.get("/api/v1/auth/login")).status_code == 429
    async with _limited_client(limiter, RULES, identify_async) as client:
        assert (await client.get("/api/v1/auth/login")).status_code == 429


async def test_limits_through_redis(redis_limiter: RedisLimiter) -> None:
    async with _limited_client(redis_limiter, RULES) as client:
        first = await client.get("/api/v1/auth/login")
        assert (first.status_code, first.headers["ratelimit-remaining"]) == (200, "0")
        refused = await client.get("/api/v1/auth/login")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_redis_down_costs_the_limits_not_the_requests() -> None:
    limiter = RedisLimiter(DEAD_REDIS)
    try:
        async with _limited_client(limiter, RULES) as client:
            for _ in range(5):
                response = await client.get("/api/v1/auth/login")
                assert response.status_code == 200
                # Nothing was counted, so nothing is claimed.
                assert "ratelimit-remaining" not in response.headers
    finally:
        await limiter.close()
    assert limiter.stats.errors == 1  # then it rested instead of failing every request
    assert limiter.stats.unchecked == 5
