"""The offline cars.com demo site, through ASGI and over a real TCP socket.

What it serves is checked with the project's own parsers against the recorded fixtures
shipped in the package; a digest per page keeps them as recorded.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import httpx
import pytest
from protego import Protego
from recordings import CARSCOM_PAGES
from selectolax.lexbor import LexborHTMLParser

from carsearch.ingest.carscom import (
    ListingGone,
    detect_block,
    parse_detail_page,
    parse_search_results,
)
from carsearch.ingest.demo_site import create_demo_site

FIXTURES = CARSCOM_PAGES
PACKAGED_PAGES = files("carsearch.ingest") / "demo_pages"

DEALER_USED_LISTING_ID = "3715142b-250e-4689-a303-e5924eb2ceaa"
DEALER_USED_VIN = "19XFC2F69LE000132"
PRIVATE_SELLER_LISTING_ID = "f36525be-f38b-4213-ad98-f5c0af0d0dba"
PRIVATE_SELLER_VIN = "WP0AB2A89AU780654"
SRP_2026 = "srp_2026-05.html"
SRP_2025 = "srp_2025-09_used_19102.html"
USER_AGENT = "carsearch-test"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@asynccontextmanager
async def demo_client(**options: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_demo_site(**options))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as client:
        yield client


# The packaged copies


# The recordings as captured: a page edited by hand would no longer be what the site sent.
RECORDED_SHA256 = {
    "challenge_2026-07_cloudflare_403.html": (
        "033a1e0a7c1d2809c0e0a3d8f9f3233dfa434a928a93f547d88ef934d2a52d6a"
    ),
    "srp_2025-09_used_19102.html": (
        "b3ff2c0f5a0d27bd096f1ffdbbb8da126ead9f6f851be4daf5dca55e0418b234"
    ),
    "srp_2026-05.html": ("c8593a014ee76be4660fc6db11d6f417e970a9fc9f01a2a42275907753bf126e"),
    "srp_card_2026-05_price_drop.html": (
        "1aae0d26e0be1c294e43249cbf96affa0ac8534acfc8265125c09735a41b1633"
    ),
    "vdp_2016_vehicle_not_found.html": (
        "ef853e358247848bcded725ef990cdcf244c81e7b11720e3dfc2257e0914a276"
    ),
    "vdp_2025-08_private_seller.html": (
        "d06184a6822480ddb2ead53e2fd94f07e914a40bcf3850e5081a1c5a38cc2d9a"
    ),
    "vdp_2026-05_dealer_used.html": (
        "9e31b285b71acdce5f51234a3ea8e2d4d596dbf7ef893b3a770352e4b58ba28e"
    ),
    "robots_excerpt.txt": ("30e726ee182d8ab8fd17a021aaeafd6ad661e8c8201ba9deb0edfd87c6ace64f"),
}


def test_packaged_pages_are_the_recordings_unedited() -> None:
    packaged = {entry.name for entry in PACKAGED_PAGES.iterdir()} - {"README.md"}
    assert packaged == set(RECORDED_SHA256)
    for name, digest in RECORDED_SHA256.items():
        assert hashlib.sha256((PACKAGED_PAGES / name).read_bytes()).hexdigest() == digest, name


# Results pages


async def test_results_page_1_is_the_2026_recording() -> None:
    async with demo_client() as client:
        response = await client.get(
            "/shopping/results/",
            params={"zip": "19102", "maximum_distance": "50", "stock_type": "used", "page": "1"},
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == (FIXTURES / SRP_2026).read_bytes()
    served = parse_search_results(response.text)
    recorded = parse_search_results(fixture_text(SRP_2026))
    assert served == recorded
    assert DEALER_USED_LISTING_ID in {listing.source_listing_id for listing in served.listings}
    assert PRIVATE_SELLER_LISTING_ID not in {
        listing.source_listing_id for listing in served.listings
    }


async def test_results_without_page_or_with_unknown_parameters_serve_page_1() -> None:
    async with demo_client() as client:
        bare = await client.get("/shopping/results/")
        odd = await client.get("/shopping/results/", params={"sort_by": "x", "whatever": "1"})
    assert bare.status_code == odd.status_code == 200
    assert bare.content == odd.content == (FIXTURES / SRP_2026).read_bytes()


async def test_results_page_2_is_the_2025_era() -> None:
    async with demo_client() as client:
        response = await client.get("/shopping/results/", params={"page": 2})
    assert response.status_code == 200
    tree = LexborHTMLParser(response.text)
    assert tree.css_first("div.listings-page[data-site-activity]") is not None
    assert tree.css_first('script[id="CarsWeb.SearchController.index"]') is None
    served = parse_search_results(response.text)
    assert served == parse_search_results(fixture_text(SRP_2025))
    assert served.total_results == 975
    assert len(served.listings) == 50


@pytest.mark.parametrize(
    ("page", "recording"), [(3, SRP_2026), (4, SRP_2025), (5, SRP_2026), (100, SRP_2025)]
)
async def test_later_results_pages_alternate_the_recordings(page: int, recording: str) -> None:
    async with demo_client() as client:
        response = await client.get("/shopping/results/", params={"page": page})
    assert response.status_code == 200
    assert response.content == (FIXTURES / recording).read_bytes()


@pytest.mark.parametrize("page", ["0", "-1", "two", "", "1.5", " 1", "\u00b2", "1" * 20])
async def test_results_page_must_be_a_positive_whole_number(page: str) -> None:
    async with demo_client() as client:
        response = await client.get("/shopping/results/", params={"page": page})
    assert response.status_code == 400
    assert "page must be a positive whole number" in response.text


# Detail pages


async def test_detail_page_of_the_dealer_used_listing() -> None:
    async with demo_client() as client:
        response = await client.get(f"/vehicledetail/{DEALER_USED_LISTING_ID}/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    listing = parse_detail_page(response.text, url=str(response.url))
    assert listing.source_listing_id == DEALER_USED_LISTING_ID
    assert listing.vin == DEALER_USED_VIN
    assert not listing.private_seller


async def test_detail_page_of_the_private_seller_listing() -> None:
    async with demo_client() as client:
        response = await client.get(f"/vehicledetail/{PRIVATE_SELLER_LISTING_ID}/")
    assert response.status_code == 200
    listing = parse_detail_page(response.text, url=str(response.url))
    assert listing.source_listing_id == PRIVATE_SELLER_LISTING_ID
    assert listing.vin == PRIVATE_SELLER_VIN
    assert listing.private_seller


async def test_detail_page_of_an_unrecorded_listing_is_404() -> None:
    async with demo_client() as client:
        response = await client.get("/vehicledetail/8d1ca7c7-b0f8-49f9-82cc-4be8bde1942f/")
    assert response.status_code == 404
    assert "no recording for this listing" in response.text


async def test_gone_listing_serves_the_vehicle_not_found_page() -> None:
    async with demo_client() as client:
        response = await client.get("/vehicledetail/gone/")
    assert response.status_code == 200
    with pytest.raises(ListingGone) as gone:
        parse_detail_page(response.text, url=str(response.url))
    assert gone.value.listing_id == "gone"


async def test_listings_declared_gone_serve_the_vehicle_not_found_page() -> None:
    async with demo_client(gone_listing_ids={DEALER_USED_LISTING_ID, "sold-1"}) as client:
        recorded = await client.get(f"/vehicledetail/{DEALER_USED_LISTING_ID}/")
        unrecorded = await client.get("/vehicledetail/sold-1/")
        still_live = await client.get(f"/vehicledetail/{PRIVATE_SELLER_LISTING_ID}/")
    for response in (recorded, unrecorded):
        assert response.status_code == 200
        with pytest.raises(ListingGone):
            parse_detail_page(response.text, url=str(response.url))
    assert parse_detail_page(still_live.text).vin == PRIVATE_SELLER_VIN


# Other paths, challenge mode, robots.txt


@pytest.mark.parametrize("path", ["/", "/vehicledetail/", "/shopping/", "/research/honda/"])
async def test_other_paths_are_404(path: str) -> None:
    async with demo_client() as client:
        response = await client.get(path)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/shopping/results/?page=1",
        "/shopping/results/?page=bad",
        f"/vehicledetail/{DEALER_USED_LISTING_ID}/",
        "/vehicledetail/gone/",
        "/vehicledetail/unknown/",
        "/anything-else",
    ],
)
async def test_challenge_mode_answers_the_cloudflare_challenge_with_403(path: str) -> None:
    async with demo_client(challenge=True) as client:
        response = await client.get(path)
    assert response.status_code == 403
    assert response.content == (FIXTURES / "challenge_2026-07_cloudflare_403.html").read_bytes()
    reason = detect_block(response.text)
    assert reason is not None
    assert "Cloudflare" in reason


async def test_challenge_mode_still_serves_robots_txt() -> None:
    async with demo_client(challenge=True) as client:
        response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert "CarSearch demo site" in response.text


async def test_robots_allow_mode_is_permissive_and_names_the_demo_site() -> None:
    async with demo_client() as client:
        response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    comments = [line for line in response.text.splitlines() if line.startswith("#")]
    assert any("CarSearch demo site" in line for line in comments)
    robots = Protego.parse(response.text)
    for path in ("/shopping/results/?page=2", f"/vehicledetail/{DEALER_USED_LISTING_ID}/"):
        assert robots.can_fetch(f"http://demo.test{path}", USER_AGENT)


async def test_robots_recorded_mode_serves_the_recorded_excerpt() -> None:
    async with demo_client(robots="recorded") as client:
        response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert response.content == (FIXTURES / "robots_excerpt.txt").read_bytes()
    robots = Protego.parse(response.text)
    for path in ("/shopping/results/?page=2", f"/vehicledetail/{DEALER_USED_LISTING_ID}/"):
        assert not robots.can_fetch(f"http://demo.test{path}", USER_AGENT)


def test_unknown_robots_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="robots must be one of"):
        create_demo_site(robots="deny")  # type: ignore[arg-type]


# Over TCP


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def demo_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """run_demo_site in a child process on a free loopback port, serving recorded robots."""
    port = free_loopback_port()
    log_path = tmp_path_factory.mktemp("demo_site") / "server.log"
    code = (
        "from carsearch.ingest.demo_site import run_demo_site; "
        f"run_demo_site('127.0.0.1', {port}, robots='recorded')"
    )
    log = log_path.open("wb")
    server = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                output = log_path.read_text(errors="replace")
                pytest.fail(f"demo site exited with {server.returncode}: {output}")
            try:
                httpx.get(f"{url}/robots.txt", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("demo site did not start listening within 30 s")
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def test_serves_over_tcp(demo_server_url: str) -> None:
    with httpx.Client(base_url=demo_server_url, timeout=10) as client:
        robots = client.get("/robots.txt")
        results = client.get("/shopping/results/", params={"zip": "19102", "page": 1})
        detail = client.get(f"/vehicledetail/{DEALER_USED_LISTING_ID}/")
        missing = client.get("/vehicledetail/no-such-listing/")
        bad_page = client.get("/shopping/results/", params={"page": "0"})
    assert robots.content == (FIXTURES / "robots_excerpt.txt").read_bytes()
    assert results.status_code == 200
    assert parse_search_results(results.text) == parse_search_results(fixture_text(SRP_2026))
    assert detail.status_code == 200
    assert parse_detail_page(detail.text, url=str(detail.url)).vin == DEALER_USED_VIN
    assert missing.status_code == 404
    assert bad_page.status_code == 400
