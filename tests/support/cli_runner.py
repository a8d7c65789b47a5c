"""The `carsearch` command as an operator runs it: a real process, its real exit code."""

from __future__ import annotations

import os
import subprocess
import sys


def carsearch(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Runs `carsearch ARGS`; the caller's DATABASE_URL is dropped unless `env` gives one."""
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "carsearch.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )
