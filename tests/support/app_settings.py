"""Settings for an app under test: test environment, in-process cache, no Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from carsearch.config import Settings


def settings_for_tests(index_dir: Path | None = None, **overrides: Any) -> Settings:
    # The in-process cache: each test's app starts with an empty one. Cookies are Secure
    # as in production; the test client speaks http but does not send them back anyway.
    values: dict[str, Any] = {
        "env": "test",
        "cors_origins": ["http://localhost:3000"],
        "search_index_dir": index_dir,
        "redis_url": None,
        # Limits have their own tests; elsewhere one test client sends many requests.
        "rate_limit_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)
