"""Cached responses of common searches, keyed by the normalized query and the index version.

Redis when `REDIS_URL` is set (shared by every API process), else a bounded in-process
LRU. A key carries the index version, so a rebuild or a sync makes every older entry
unreachable: the in-process cache drops them at once, Redis lets them expire.

The cache is an optimisation only: any failure of it is counted and the search runs
uncached.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from carsearch.observability.metrics import CACHE_REQUESTS

logger = logging.getLogger(__name__)

KEY_PREFIX = "carsearch:response"
SEARCH_ENDPOINTS = frozenset({"listings", "facets", "filters"})


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def failed(self) -> None:
        with self._lock:
            self.errors += 1

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "errors": self.errors}


class ResponseCache(Protocol):
    backend: str
    stats: CacheStats

    async def get(self, version: str, key: str) -> bytes | None: ...

    async def set(self, version: str, key: str, body: bytes) -> None: ...

    async def close(self) -> None: ...


def cache_key(endpoint: str, normalized: dict[str, Any]) -> str:
    """A short, stable key for one normalized query of one endpoint."""
    digest = hashlib.blake2b(
        orjson.dumps(normalized, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).hexdigest()
    return f"{endpoint}:{digest}"


def cached_kind(key: str) -> str:
    """What an entry holds, from its key: the search endpoints' answers are all `search`;
    other keys start with their kind (`listing:<vin>`, `history:<vin>`)."""
    prefix = key.partition(":")[0]
    return "search" if prefix in SEARCH_ENDPOINTS else prefix


class MemoryCache:
    """Least-recently-used entries with a time to live, for one process."""

    backend = "memory"

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self.stats = CacheStats()
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._version: str | None = None
        self._lock = threading.Lock()

    async def get(self, version: str, key: str) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            self._follow(version)
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(key)
                body: bytes | None = entry[1]
            else:
                if entry is not None:
                    del self._entries[key]
                body = None
        self.stats.count(hit=body is not None)
        return body

    async def set(self, version: str, key: str, body: bytes) -> None:
        with self._lock:
            self._follow(version)
            self._entries[key] = (time.monotonic() + self.ttl_seconds, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _follow(self, version: str) -> None:
        if version != self._version:
            # The index changed: nothing cached before can be served again.
            self._entries.clear()
            self._version = version

    def __len__(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Entries shared by every API process; they expire after the time to live."""

    backend = "redis"

    def __init__(self, url: str, ttl_seconds: float, timeout_seconds: float = 0.25) -> None:
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.stats = CacheStats()
        self._redis = Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
        )

    async def get(self, version: str, key: str) -> bytes | None:
        try:
            body = await self._redis.get(f"{KEY_PREFIX}:{version}:{key}")
        except (RedisError, OSError) as exc:
            self._failed("read", exc)
            self.stats.count(hit=False)
            return None
        self.stats.count(hit=body is not None)
        if isinstance(body, str):  # only with decode_responses, which this client does not set
            return body.encode()
        return body

    async def set(self, version: str, key: str, body: bytes) -> None:
        try:
            await self._redis.set(f"{KEY_PREFIX}:{version}:{key}", body, px=self.ttl_ms)
        except (RedisError, OSError) as exc:
            self._failed("write", exc)

    def _failed(self, action: str, exc: Exception) -> None:
        self.stats.failed()
        logger.warning("search cache %s failed: %s", action, exc)

    async def close(self) -> None:
        await self._redis.aclose()


async def through_cache(
    cache: ResponseCache | None,
    version: str,
    key: str,
    compute: Callable[[], Awaitable[bytes]],
    *,
    name: str | None = None,
) -> tuple[bytes, bool]:
    """The cached entry for `key` at `version`, or a computed one (then cached); and
    whether it was a hit, counted under `name` (by default, what the key is of: `search`,
    `listing`, `history`). Errors raised by `compute` are never cached."""
    entry = await cache.get(version, key) if cache is not None else None
    if cache is not None:
        kind = name or cached_kind(key)
        CACHE_REQUESTS.labels(kind, "hit" if entry is not None else "miss").inc()
    if entry is not None:
        return entry, True
    entry = await compute()
    if cache is not None:
        await cache.set(version, key, entry)
    return entry, False


def create_cache(
    redis_url: str | None, *, max_entries: int, ttl_seconds: float
) -> MemoryCache | RedisCache:
    if redis_url:
        return RedisCache(redis_url, ttl_seconds)
    return MemoryCache(max_entries, ttl_seconds)
