"""Whether a process runs, by its id: for files left behind by processes that may be gone."""

from __future__ import annotations

import os


def process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True
