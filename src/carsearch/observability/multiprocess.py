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

from carsearch.processes import process_running

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_FILE_PID = re.compile(r"_(\d+)\.db$")


def use_metrics_dir(directory: Path, *, remove_stale: bool) -> None:
    """Make this process, and those it starts, share metrics through `directory`.

    `remove_stale` (the API at its start) cleans up after processes that no longer run.
    When none of the directory's processes runs any more, every file goes: a fresh start,
    which Prometheus reads as a counter reset. When one still runs (a job worker), only the
    dead processes' live gauges go: their counters stay, because taking them out of the
    sums would make totals drop while the worker's keep growing, and Prometheus would read
    the drop as a reset followed by the worker's whole lifetime as new increase.
    """
    if "prometheus_client" in sys.modules and os.environ.get(ENVIRONMENT_VARIABLE) != str(
        directory
    ):
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    directory.mkdir(parents=True, exist_ok=True)
    if remove_stale:
        _remove_stale(directory)
    os.environ[ENVIRONMENT_VARIABLE] = str(directory)


def _remove_stale(directory: Path) -> None:
    files = {path: _FILE_PID.search(path.name) for path in directory.glob("*.db")}
    live = {int(m.group(1)) for m in files.values() if m is not None and _running(int(m.group(1)))}
    for path, match in files.items():
        dead = match is None or int(match.group(1)) not in live
        if dead and (not live or path.name.startswith("gauge_live")):
            path.unlink(missing_ok=True)


def forget_this_process() -> None:
    """Take this process's live gauges (pool connections) out of the sums, at its exit."""
    directory = os.environ.get(ENVIRONMENT_VARIABLE)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def _running(pid: int) -> bool:
    # Our own pid on a file at start: an earlier process had it.
    return pid != os.getpid() and process_running(pid)
