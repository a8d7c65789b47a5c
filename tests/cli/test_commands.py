"""The `carsearch` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import carsearch
from sqlalchemy.engine import URL

from carsearch.db import migrate
from carsearch.db.engine import libpq_dsn


def assert_one_clear_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert expected in lines[0]


@pytest.mark.parametrize(
    "command",
    [
        "run",
        "serve",
        "worker",
        "migrate",
        "seed",
        "appraise",
        "reindex",
        "db",
        "db status",
        "db url",
        "stats",
        "stats searches",
        "openapi",
    ],
)
def test_every_command_has_help(command: str) -> None:
    result = carsearch(*command.split(), "--help")
    assert result.returncode == 0
    assert "Usage" in result.stdout


@pytest.mark.parametrize(
    ("value", "expected"), [("-5", "greater than or equal to 0"), ("abc", "valid integer")]
)
def test_seed_refuses_a_bad_count(value: str, expected: str) -> None:
    result = carsearch("seed", "--listings", value)
    assert result.returncode == 2
    assert_one_clear_line(result, expected)


def test_an_unreachable_database_is_one_line() -> None:
    result = carsearch(
        "db", "status", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"}
    )
    assert result.returncode == 1
    assert_one_clear_line(result, "cannot connect to postgresql://postgres@127.0.0.1:1/nowhere")


def test_a_database_url_of_another_kind_is_refused() -> None:
    result = carsearch("migrate", env={"DATABASE_URL": "mysql://root@localhost/x"})
    assert_one_clear_line(result, "must be a postgresql:// URL")


def test_an_unknown_revision_is_refused() -> None:
    assert_one_clear_line(carsearch("migrate", "--to", "nope"), "unknown revision 'nope'")


def test_migrate_and_seed_on_a_server(make_database: Callable[..., URL]) -> None:
    env = {"DATABASE_URL": libpq_dsn(make_database())}
    not_migrated = carsearch("seed", "--listings", "10", env=env)
    assert_one_clear_line(not_migrated, "run `carsearch migrate`")

    migrated = carsearch("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert f"base -> {migrate.head_revision()}" in migrated.stderr
    seeded = carsearch("seed", "--listings", "50", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded 50 listings" in seeded.stderr
    assert "appraised " in seeded.stderr  # a seeded market is rated at once
    appraised = carsearch("appraise", env=env)
    assert appraised.returncode == 0, appraised.stderr
    assert "appraising listings" in appraised.stderr  # the progress bar
    assert re.search(r"appraised \d+ active listings .* 0 changed", appraised.stderr)
    status = carsearch("db", "status", env=env)
    assert re.search(r"^listings\s+50$", status.stderr, re.MULTILINE)
    down = carsearch("migrate", "--to", "0001", env=env)
    assert f"{migrate.head_revision()} -> 0001" in down.stderr


def test_a_data_directory_held_by_another_process(tmp_path: Path) -> None:
    pg_dir = tmp_path / "pg"
    pg_dir.mkdir()
    (pg_dir / "PG_VERSION").write_text("18\n")
    holder = subprocess.Popen(["sleep", "60"])
    try:
        # postmaster.pid names a live process that is not a PostgreSQL server.
        (pg_dir / "postmaster.pid").write_text(
            f"{holder.pid}\n{pg_dir}\n1700000000\n5432\n{pg_dir}\n\n  0 0\nready   \n"
        )
        result = carsearch("db", "status", env={"CARSEARCH_EMBEDDED_PG_DIR": str(pg_dir)})
    finally:
        holder.kill()
        holder.wait()
    assert_one_clear_line(result, f"held by process {holder.pid} (sleep)")


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pg").write_text("not a directory")
    result = carsearch("db", "url", env={"CARSEARCH_EMBEDDED_PG_DIR": str(tmp_path / "pg")})
    assert_one_clear_line(result, "is not a directory")


def test_openapi_prints_the_spec_and_refuses_bad_targets(tmp_path: Path) -> None:
    result = carsearch("openapi")
    assert result.returncode == 0
    assert '"/api/v1/listings"' in result.stdout

    assert_one_clear_line(carsearch("openapi", "--write", "x.md"), "--write needs --markdown")
    unmarked = tmp_path / "unmarked.md"
    unmarked.write_text("# no markers here\n")
    assert_one_clear_line(
        carsearch("openapi", "--markdown", "--write", str(unmarked)), "no reference markers"
    )
    assert unmarked.read_text() == "# no markers here\n"  # left as it was
    missing = tmp_path / "missing.md"
    assert_one_clear_line(
        carsearch("openapi", "--markdown", "--write", str(missing)), "cannot update"
    )
