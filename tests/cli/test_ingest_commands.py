"""`carsearch parse`, `scrape` and `demo-site` as an operator runs them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import carsearch
from loopback import serving
from recordings import CARSCOM_PAGES
from sqlalchemy.engine import URL

from carsearch.ingest.demo_site import create_demo_site

PAGES = CARSCOM_PAGES


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_parse_prints_every_listing_of_every_layout_as_json_lines() -> None:
    files = sorted(p for p in PAGES.glob("*.html") if "challenge" not in p.name)
    result = carsearch("parse", "carscom", *map(str, files))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_kind: dict[str, list[dict[str, object]]] = {}
    for record in records:
        by_kind.setdefault(str(record["kind"]), []).append(record)
    results_pages = {Path(str(r["file"])).name: r for r in by_kind["results"]}
    assert results_pages["srp_2025-09_used_19102.html"]["total_results"] == 975
    assert results_pages["srp_2026-05.html"]["total_pages"] == 9
    assert len(by_kind["gone"]) == 1
    vins = {record["vin"] for record in by_kind["listing"]}
    assert {"19XFC2F69LE000132", "WP0AB2A89AU780654"} <= vins


def test_parse_refuses_a_challenge_page_with_exit_2() -> None:
    result = carsearch("parse", "carscom", str(PAGES / "challenge_2026-07_cloudflare_403.html"))
    assert result.returncode == 2
    assert "bot challenge page" in error_line(result)


def test_parse_says_which_file_it_cannot_read(tmp_path: Path) -> None:
    result = carsearch("parse", "carscom", str(tmp_path / "missing.html"))
    assert result.returncode == 1
    assert "cannot read" in error_line(result)
    other = tmp_path / "other.html"
    other.write_text("<html><body>hello</body></html>")
    result = carsearch("parse", "carscom", str(other))
    assert result.returncode == 1
    assert "other.html" in error_line(result)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--zip", "abc"], "5-digit US ZIP code"),
        (["--radius", "0"], "--radius"),
        (["--base-url", "ftp://x"], "http(s) URL"),
        (["--max-pages", "x"], "valid integer"),
    ],
)
def test_scrape_refuses_bad_options(args: list[str], expected: str) -> None:
    result = carsearch("scrape", "carscom", *args)
    assert result.returncode != 0
    assert expected in error_line(result)


def test_scrape_from_the_demo_site_with_a_summary(
    make_database: Callable[..., URL], tmp_path: Path
) -> None:
    url = make_database(migrated=True)
    env = {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "CARSEARCH_CARSCOM_MIN_INTERVAL_SECONDS": "0",
        "CARSEARCH_VPIC_ENABLED": "false",
        # Never the developer's own index under var/.
        "CARSEARCH_VAR_DIR": str(tmp_path / "var"),
    }
    with serving(create_demo_site()) as demo:
        result = carsearch(
            "scrape", "carscom", "--base-url", demo, "--max-pages", "1", "--no-details", env=env
        )
        assert result.returncode == 0, result.stderr
        assert "robots.txt honoured" in result.stderr
        assert "succeeded; pages 1, listings parsed 27: new 27" in result.stderr
        again = carsearch("scrape", "carscom", "--base-url", demo, "--max-pages", "1", env=env)
        assert "new 0, updated 0, unchanged 27" in again.stderr
    with serving(create_demo_site(challenge=True)) as blocked:
        result = carsearch("scrape", "carscom", "--base-url", blocked, env=env)
        assert result.returncode == 3
        assert "blocked" in result.stderr
        assert "Traceback" not in result.stderr
