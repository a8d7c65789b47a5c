"""The Redis tests use: REDIS_URL when set (CI sets it, and then Redis must answer), else
the local default, skipping the test when nothing answers there."""

from __future__ import annotations

import os

import pytest
from redis import Redis
from redis.exceptions import RedisError


def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except (RedisError, OSError):
        if "REDIS_URL" in os.environ:
            raise
        pytest.skip("no Redis at 127.0.0.1:6379 (set REDIS_URL to run this test)")
    return url
