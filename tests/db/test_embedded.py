"""The embedded server survives an unclean stop and stops with its last user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

START_AND_VANISH = """
import os, sys
from carsearch.db.embedded import start_embedded_server
server = start_embedded_server(__import__("pathlib").Path(sys.argv[1]))
print(server.get_pid(), flush=True)
os._exit(0)  # no atexit: the handle stays behind, as after a crash
"""

START_AND_EXIT = """
import sys
from pathlib import Path
from carsearch.db.embedded import start_embedded_server
server = start_embedded_server(Path(sys.argv[1]))
print(server.get_pid(), flush=True)
"""


def _python(code: str, pg_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code, str(pg_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_survives_a_crashed_user_and_a_killed_server(tmp_path: Path) -> None:
    pg_dir = tmp_path / "pg"
    first_pid = int(_python(START_AND_VANISH, pg_dir))
    assert _alive(first_pid)
    assert json.loads((pg_dir / ".handle_pids.json").read_text())  # a dead process's handle

    # The next user forgets the dead handle, joins the running server, and as the last
    # user stops it on exit.
    assert int(_python(START_AND_EXIT, pg_dir)) == first_pid
    assert not (pg_dir / "postmaster.pid").exists()

    # A server killed outright leaves a stale postmaster.pid; the next start recovers.
    second_pid = int(_python(START_AND_VANISH, pg_dir))
    os.kill(second_pid, 9)
    for _ in range(100):
        if not _alive(second_pid):
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert (pg_dir / "postmaster.pid").exists()
    third_pid = int(_python(START_AND_EXIT, pg_dir))
    assert third_pid != second_pid
    assert not (pg_dir / "postmaster.pid").exists()
