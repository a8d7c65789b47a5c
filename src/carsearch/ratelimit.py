"""Request rate limits per caller and route group, as plain ASGI middleware.

A limit is "N requests per period" for one key, `<group>:<identity>`: the route group a
path belongs to (`search`, `auth`, `user`, `chat`, `default`) and who is asking (a user
id, else the client address).

The algorithm is GCRA, the generic cell rate algorithm (a token bucket of `limit` tokens
refilled at `limit / period`, written as one timestamp). We chose it over a sliding
window counter because it is exact rather than an approximation, lets no double burst
through at a window boundary, spreads the refill evenly, and keeps one number per key:
one small Redis value updated atomically by a short Lua script that reads the Redis
server's clock, so every API process and host shares one clock.

Per key we keep the theoretical arrival time (TAT): when the bucket will be full again.
A request costs one emission interval T = period / limit and is allowed when, after
paying, the TAT is at most one period ahead of now. A key whose TAT has passed is the
same as a key never seen, so keys expire then and idle callers cost nothing.

Headers follow the IETF draft names, in seconds: `RateLimit-Limit`, `RateLimit-Remaining`
(requests that would be allowed right now) and `RateLimit-Reset` (until the full quota is
back). A refused request gets a 429 error envelope with `Retry-After`.

The limiter protects the API; it must never take it down. When Redis fails, requests are
allowed (fail open), the failure is counted, a warning is logged now and then, and Redis
is left alone for a moment so that a slow server does not add its timeout to every
request.
"""

from __future__ import annotations

import inspect
import ipaddress
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

KEY_PREFIX = "carsearch:ratelimit"
API_PREFIX = "/api/v1"
GROUPS = ("search", "auth", "user", "chat", "default")
DEFAULT_GROUP = "default"

_US = 1_000_000
_SEARCH_RESOURCES = frozenset({"listings", "facets", "filters", "dealers"})
_OWN_GROUPS = frozenset({"auth", "user", "chat"})
_UNLIMITED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"}
)
_UNLIMITED_PREFIXES = ("/docs-assets/",)
_RULE = re.compile(r"^(?P<group>[^=]*)=(?P<limit>[^/]*)/(?P<period>.*)$")
_MAX_PERIOD_SECONDS = 86_400.0
_MAX_LIMIT = 1_000_000


# --- Limits -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`limit` requests per `period_seconds`, refilled evenly."""

    limit: int
    period_seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise ValueError(f"limit must be a whole number, not {self.limit!r}")
        if not 1 <= self.limit <= _MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {_MAX_LIMIT}, not {self.limit}")
        if not (math.isfinite(self.period_seconds) and self.period_seconds > 0):
            raise ValueError(
                f"period must be a positive number of seconds, not {self.period_seconds}"
            )
        if self.period_seconds > _MAX_PERIOD_SECONDS:
            raise ValueError(
                f"period must be at most {_MAX_PERIOD_SECONDS:g} seconds, "
                f"not {self.period_seconds:g}"
            )
        if self.interval_us < 1:
            raise ValueError(f"{self}: more than one request per microsecond")

    @property
    def period_us(self) -> int:
        return round(self.period_seconds * _US)

    @property
    def interval_us(self) -> int:
        # Rounded down, so that `limit` requests at once always fit in one period.
        return self.period_us // self.limit

    def __str__(self) -> str:
        return f"{self.limit}/{self.period_seconds:g}"


def parse_rules(text: str) -> dict[str, RateLimit]:
    """Limits per route group from `"search=120/60,auth=10/60,default=300/60"`: requests
    per period in seconds. Blank text means no limits at all."""
    rules: dict[str, RateLimit] = {}
    items = [item.strip() for item in text.split(",")]
    while items and not items[-1]:  # blank text, or a trailing comma
        items.pop()
    for item in items:
        if not item:
            raise ValueError(f"rate limits {text!r}: empty rule between commas")
        match = _RULE.match(item)
        if match is None:
            raise ValueError(
                f"rate limit {item!r}: expected <group>=<requests>/<seconds>, such as search=120/60"
            )
        group = match["group"].strip()
        if group not in GROUPS:
            raise ValueError(
                f"rate limit {item!r}: unknown group {group!r}; groups are {', '.join(GROUPS)}"
            )
        if group in rules:
            raise ValueError(f"rate limit {item!r}: group {group!r} is given twice")
        limit_text, period_text = match["limit"].strip(), match["period"].strip()
        if not limit_text.isdigit():
            raise ValueError(
                f"rate limit {item!r}: requests must be a whole number, not {limit_text!r}"
            )
        try:
            period = float(period_text)
        except ValueError:
            raise ValueError(
                f"rate limit {item!r}: period must be a number of seconds, not {period_text!r}"
            ) from None
        try:
            rules[group] = RateLimit(int(limit_text), period)
        except ValueError as exc:
            raise ValueError(f"rate limit {item!r}: {exc}") from None
    return rules


def route_group(path: str) -> str | None:
    """The route group whose limit applies to `path`; None for paths never limited."""
    if path in _UNLIMITED_PATHS or path.startswith(_UNLIMITED_PREFIXES):
        return None
    if path.startswith(API_PREFIX + "/"):
        resource = path[len(API_PREFIX) + 1 :].split("/", 1)[0]
        if resource in _OWN_GROUPS:
            return resource
        if resource in _SEARCH_RESOURCES:
            return "search"
    return DEFAULT_GROUP


@dataclass(frozen=True, slots=True)
class RateLimitRules:
    """Limits per route group. A group without its own limit shares the `default` one;
    without a `default`, such groups are not limited."""

    limits: Mapping[str, RateLimit]

    @classmethod
    def parse(cls, text: str) -> RateLimitRules:
        return cls(parse_rules(text))

    def for_path(self, path: str) -> tuple[str, RateLimit] | None:
        """The group that counts a request to `path` and its limit, or None if unlimited."""
        group = route_group(path)
        if group is None:
            return None
        limit = self.limits.get(group)
        if limit is not None:
            return group, limit
        limit = self.limits.get(DEFAULT_GROUP)
        return (DEFAULT_GROUP, limit) if limit is not None else None


# --- Decisions and the algorithm ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_seconds: float
    retry_after_seconds: float
    # False when the backend failed and the request was let through unchecked.
    checked: bool = True

    @classmethod
    def unchecked(cls, rule: RateLimit) -> Decision:
        return cls(True, rule.limit, rule.limit, 0.0, 0.0, checked=False)


def _gcra(tat_us: int | None, now_us: int, rule: RateLimit) -> tuple[bool, int]:
    """Whether a request at `now_us` is allowed, and the key's TAT if it is."""
    new_tat = max(tat_us if tat_us is not None else now_us, now_us) + rule.interval_us
    return new_tat - now_us <= rule.period_us, new_tat


def _decision(allowed: bool, ahead_us: int, rule: RateLimit) -> Decision:
    """The decision from `ahead_us`: how far the TAT would be ahead of now after this
    request (the same figure the Redis script returns)."""
    if allowed:
        remaining = (rule.period_us - ahead_us) // rule.interval_us
        return Decision(True, rule.limit, min(remaining, rule.limit), ahead_us / _US, 0.0)
    return Decision(
        False,
        rule.limit,
        0,
        (ahead_us - rule.interval_us) / _US,
        (ahead_us - rule.period_us) / _US,
    )


@dataclass(slots=True)
class LimiterStats:
    allowed: int = 0
    refused: int = 0
    # Requests let through unchecked because the backend failed or was resting after a
    # failure; `errors` counts the failures themselves.
    unchecked: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, decision: Decision) -> None:
        with self._lock:
            if not decision.checked:
                self.unchecked += 1
            elif decision.allowed:
                self.allowed += 1
            else:
                self.refused += 1

    def failed(self) -> None:
        with self._lock:
            self.errors += 1

    def as_dict(self) -> dict[str, int]:
        return {
            "allowed": self.allowed,
            "refused": self.refused,
            "unchecked": self.unchecked,
            "errors": self.errors,
        }


class RateLimiter(Protocol):
    backend: str
    stats: LimiterStats

    async def hit(self, key: str, rule: RateLimit) -> Decision: ...

    async def close(self) -> None: ...


# --- Backends ---------------------------------------------------------------------------


class MemoryLimiter:
    """Limits counted in this process only, for development and a single API process.

    Memory is bounded: keys whose TAT has passed are dropped as the least recently used
    end of the table is visited, and beyond `max_keys` the least recently used key is
    forgotten (that caller starts again with a full quota).
    """

    backend = "memory"

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self.stats = LimiterStats()
        self._clock = clock
        self._tats: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    async def hit(self, key: str, rule: RateLimit) -> Decision:
        now_us = round(self._clock() * _US)
        with self._lock:
            allowed, new_tat = _gcra(self._tats.get(key), now_us, rule)
            if allowed:
                self._tats[key] = new_tat
                self._tats.move_to_end(key)
            self._drop_idle(now_us)
        decision = _decision(allowed, new_tat - now_us, rule)
        self.stats.count(decision)
        return decision

    def _drop_idle(self, now_us: int) -> None:
        # A few steps per hit keep the sweep O(1) and still outpace the arrival of keys.
        for _ in range(4):
            oldest = next(iter(self._tats.items()), None)
            if oldest is None or oldest[1] > now_us:
                break
            del self._tats[oldest[0]]
        while len(self._tats) > self.max_keys:
            self._tats.popitem(last=False)

    def __len__(self) -> int:
        return len(self._tats)

    async def close(self) -> None:
        with self._lock:
            self._tats.clear()


# KEYS[1] the key; ARGV[1] the emission interval and ARGV[2] the period, in microseconds.
# Returns {allowed (1 or 0), how far the TAT would be ahead of now, in microseconds}.
# Numbers are written with %.0f: Lua's default conversion keeps 14 digits, and a TAT in
# microseconds since the epoch has 16.
_GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local ahead = tat + interval - now
if ahead > period then
    return {0, ahead}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval),
           'PX', math.ceil(ahead / 1000))
return {1, ahead}
"""


class RedisLimiter:
    """Limits shared by every API process through one Redis; keys expire when idle."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = KEY_PREFIX,
        timeout_seconds: float = 0.25,
        rest_after_failure_seconds: float = 1.0,
        warn_every_seconds: float = 60.0,
    ) -> None:
        self.key_prefix = key_prefix
        self.stats = LimiterStats()
        self.rest_after_failure_seconds = rest_after_failure_seconds
        self.warn_every_seconds = warn_every_seconds
        # No retries: a limiter that waits for a sick Redis slows every request.
        self._redis = Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self._script = self._redis.register_script(_GCRA_SCRIPT)
        self._resting_until = 0.0
        self._failures_unreported = 0
        self._last_warning = -math.inf
        self._failing = False

    async def hit(self, key: str, rule: RateLimit) -> Decision:
        if time.monotonic() < self._resting_until:
            decision = Decision.unchecked(rule)
        else:
            try:
                allowed, ahead_us = await self._script(
                    keys=[f"{self.key_prefix}:{key}"], args=[rule.interval_us, rule.period_us]
                )
            except (RedisError, OSError) as exc:
                self._failed(exc)
                decision = Decision.unchecked(rule)
            else:
                if self._failing:
                    self._failing = False
                    logger.info("rate limiter: Redis answers again; limits apply")
                decision = _decision(bool(allowed), int(ahead_us), rule)
        self.stats.count(decision)
        return decision

    def _failed(self, exc: Exception) -> None:
        self.stats.failed()
        self._failing = True
        now = time.monotonic()
        self._resting_until = now + self.rest_after_failure_seconds
        self._failures_unreported += 1
        if now - self._last_warning >= self.warn_every_seconds:
            logger.warning(
                "rate limiter: Redis failed %d time(s) since the last warning, requests "
                "pass unchecked: %s",
                self._failures_unreported,
                exc,
            )
            self._last_warning = now
            self._failures_unreported = 0

    async def close(self) -> None:
        await self._redis.aclose()


def create_limiter(
    redis_url: str | None, *, timeout_seconds: float = 0.25, max_keys: int = 100_000
) -> MemoryLimiter | RedisLimiter:
    """Redis when a URL is given (limits shared by every API process), else in-process."""
    if redis_url:
        return RedisLimiter(redis_url, timeout_seconds=timeout_seconds)
    return MemoryLimiter(max_keys=max_keys)


# --- Who is asking ---------------------------------------------------------------------

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_address(text: str) -> _Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class ClientIpIdentity:
    """`ip:<client address>`: the ASGI peer address. `X-Forwarded-For` counts only when
    the peer is one of `trusted_proxies` (addresses or networks): then the client is the
    nearest address in the chain that is not itself a trusted proxy."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted_proxies: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(proxy.strip(), strict=False) for proxy in trusted_proxies
        )

    def __call__(self, scope: Scope) -> str:
        return f"ip:{self.address(scope)}"

    def address(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = _parse_address(client[0]) if client else None
        if peer is None:
            return str(client[0]) if client else "unknown"
        if not self._trusted(peer):
            return str(peer)
        nearest = peer
        for hop in reversed(self._forwarded_for(scope)):
            address = _parse_address(hop)
            if address is None:
                # Not written by a proxy of ours; what our last proxy saw is all we know.
                break
            nearest = address
            if not self._trusted(address):
                break
        return str(nearest)

    def _trusted(self, address: _Address) -> bool:
        return any(address in network for network in self.trusted_proxies)

    @staticmethod
    def _forwarded_for(scope: Scope) -> list[str]:
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                hops.extend(value.decode("latin-1").split(","))
        return hops


client_ip_identity = ClientIpIdentity()

Identify = Callable[[Scope], str | Awaitable[str]]


# --- Middleware -------------------------------------------------------------------------


def rate_limit_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The RateLimit-* headers of a decision; none when it could not be checked."""
    if not decision.checked:
        return []
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(max(0, math.ceil(decision.reset_after_seconds))).encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(retry_after(decision)).encode()))
    return headers


def retry_after(decision: Decision) -> int:
    """Whole seconds to wait before the next request is allowed, at least 1."""
    return max(1, math.ceil(decision.retry_after_seconds))


class RateLimitMiddleware:
    """Counts each HTTP request against its route group's limit for its caller.

    OPTIONS requests (CORS preflights) and the operational and documentation paths are
    never counted. Add it inside the CORS middleware so that a 429 carries CORS headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        rules: RateLimitRules | Mapping[str, RateLimit],
        identify: Identify = client_ip_identity,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.rules = rules if isinstance(rules, RateLimitRules) else RateLimitRules(rules)
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        applicable = self.rules.for_path(scope["path"])
        if applicable is None:
            await self.app(scope, receive, send)
            return
        group, rule = applicable
        identity = await self._identity(scope)
        decision = await self.limiter.hit(f"{group}:{identity}", rule)
        headers = rate_limit_headers(decision)
        if not decision.allowed:
            await self._refuse(group, rule, decision, headers)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and headers:
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _identity(self, scope: Scope) -> str:
        try:
            identity = self.identify(scope)
            return await identity if inspect.isawaitable(identity) else identity
        except Exception:
            # A bug in identifying a caller must not fail the request; count by address.
            logger.exception("rate limiter: identify failed; counting by client address")
            return client_ip_identity(scope)

    @staticmethod
    def _refuse(
        group: str, rule: RateLimit, decision: Decision, headers: list[tuple[bytes, bytes]]
    ) -> JSONResponse:
        wait = retry_after(decision)
        body = {
            "error": {
                "code": "rate_limited",
                "message": f"too many requests; retry in {wait} s",
                "details": [
                    {"group": group, "limit": rule.limit, "period_seconds": rule.period_seconds}
                ],
            }
        }
        response = JSONResponse(body, status_code=429)
        response.raw_headers.extend(headers)
        return response
