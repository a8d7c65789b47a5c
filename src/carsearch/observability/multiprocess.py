"""The directory through which API worker processes and the job worker share metrics.

prometheus-client picks per-process files over in-memory values when it is imported with
PROMETHEUS_MULTIPROC_DIR set, so `use_metrics_dir` must run before anything imports it:
this module does not, and the commands call it first. Each process writes
`<kind>_<pid>.db` files there; /metrics adds them all up.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_FILE_PID = re.compile(r"_(\d+)\.db$")


def use_metrics_dir(directory: Path, *, remove_stale: bool) -> None:
    """Make this process, and those it starts, share metrics through `directory`.

    `remove_stale` deletes the files of processes that no longer run (an earlier start):
    their counts would otherwise be added to the new ones forever. The files of a job
    worker that is still running stay, so starting the API does not lose its counts.
    """
    if "prometheus_client" in sys.modules and os.environ.get(ENVIRONMENT_VARIABLE) != str(
        directory
    ):
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    directory.mkdir(parents=True, exist_ok=True)
    if remove_stale:
        for path in directory.glob("*.db"):
            match = _FILE_PID.search(path.name)
            if match is None or not _running(int(match.group(1))):
                path.unlink(missing_ok=True)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)


def forget_this_process() -> None:
    """Take this process's live gauges (pool connections) out of the sums, at its exit."""
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a file of an earlier process that had this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
