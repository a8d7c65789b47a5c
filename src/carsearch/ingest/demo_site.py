"""An offline stand-in for cars.com that serves real recorded pages.

The recorded cars.com pages in `demo_pages/` (unedited; the tests read the same files) are
served at the paths cars.com uses, so a scraper can run end to end with no network:

- `GET /robots.txt`: a permissive file naming this demo site, or the recorded excerpt of
  cars.com's own (which disallows `/shopping/results/` and `/vehicledetail/`);
- `GET /shopping/results/?page=N`: odd pages serve the 2026 results recording and even
  pages the 2025 one, so a run over several pages meets both layout eras and the same
  listings more than once, as a VIN-deduping pipeline must absorb; other query
  parameters are accepted and ignored;
- `GET /vehicledetail/{listing_id}/`: the recorded detail page of that listing, the
  recorded "Vehicle Not Found" page for `gone` and any id declared gone, else 404;
- with `challenge=True`, every path but `/robots.txt` answers the recorded Cloudflare
  challenge with HTTP 403.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal, get_args

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from carsearch.ingest.carscom import parse_detail_page

RobotsMode = Literal["allow", "recorded"]

# The listing id that always serves the "Vehicle Not Found" page.
GONE_LISTING_ID = "gone"

# Odd results pages serve the first, even pages the second.
RESULTS_PAGE_FILES = ("srp_2026-05.html", "srp_2025-09_used_19102.html")
DETAIL_PAGE_FILES = ("vdp_2026-05_dealer_used.html", "vdp_2025-08_private_seller.html")
GONE_PAGE_FILE = "vdp_2016_vehicle_not_found.html"
CHALLENGE_PAGE_FILE = "challenge_2026-07_cloudflare_403.html"
ROBOTS_EXCERPT_FILE = "robots_excerpt.txt"

DEMO_ROBOTS_TXT = """\
# robots.txt of the CarSearch demo site: an offline stand-in for cars.com that serves
# recorded pages. Everything here may be fetched.
User-agent: *
Allow: /
"""

_NO_RECORDING_BODY = (
    "<!DOCTYPE html><html><head><title>Not found</title></head>"
    "<body><p>no recording for this listing</p></body></html>"
)
# Nine digits at most keeps int() cheap; no scraper asks for page 10^9.
_PAGE_NUMBER_RE = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class RecordedPages:
    results: tuple[bytes, ...]
    details_by_listing_id: Mapping[str, bytes]
    gone: bytes
    challenge: bytes
    robots_excerpt: bytes


@cache
def load_recorded_pages() -> RecordedPages:
    """The packaged recordings, read once; detail pages keyed by the listing id they show."""
    directory = files("carsearch.ingest") / "demo_pages"

    def read(name: str) -> bytes:
        return (directory / name).read_bytes()

    details_by_listing_id: dict[str, bytes] = {}
    for name in DETAIL_PAGE_FILES:
        page = read(name)
        listing = parse_detail_page(page.decode("utf-8"))
        details_by_listing_id[listing.source_listing_id] = page
    return RecordedPages(
        results=tuple(read(name) for name in RESULTS_PAGE_FILES),
        details_by_listing_id=details_by_listing_id,
        gone=read(GONE_PAGE_FILE),
        challenge=read(CHALLENGE_PAGE_FILE),
        robots_excerpt=read(ROBOTS_EXCERPT_FILE),
    )


class _ChallengeEveryPage:
    """Answers every request but robots.txt with the challenge, as Cloudflare's edge does."""

    def __init__(self, app: ASGIApp, challenge_page: bytes) -> None:
        self.app = app
        self.challenge_page = challenge_page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/robots.txt":
            response = HTMLResponse(
                self.challenge_page, status_code=403, headers={"cf-mitigated": "challenge"}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def create_demo_site(
    *,
    challenge: bool = False,
    robots: RobotsMode = "allow",
    gone_listing_ids: Collection[str] = (),
) -> Starlette:
    """The demo site as an ASGI app.

    `robots` picks the robots.txt served: "allow" (everything allowed) or "recorded"
    (cars.com's own excerpt). `gone_listing_ids` are served the "Vehicle Not Found"
    page in addition to `gone`, even when a recording of them exists.
    """
    if robots not in get_args(RobotsMode):
        raise ValueError(f"robots must be one of {get_args(RobotsMode)}, got {robots!r}")
    pages = load_recorded_pages()
    robots_txt = pages.robots_excerpt if robots == "recorded" else DEMO_ROBOTS_TXT.encode()
    gone_ids = frozenset({GONE_LISTING_ID, *gone_listing_ids})

    async def robots_file(request: Request) -> Response:
        return PlainTextResponse(robots_txt)

    async def search_results(request: Request) -> Response:
        raw_page = request.query_params.get("page", "1")
        if not _PAGE_NUMBER_RE.fullmatch(raw_page) or int(raw_page) < 1:
            return PlainTextResponse(
                f"page must be a positive whole number, got {raw_page!r}", status_code=400
            )
        return HTMLResponse(pages.results[(int(raw_page) - 1) % len(pages.results)])

    async def vehicle_detail(request: Request) -> Response:
        listing_id: str = request.path_params["listing_id"]
        if listing_id in gone_ids:
            return HTMLResponse(pages.gone)
        page = pages.details_by_listing_id.get(listing_id)
        if page is None:
            return HTMLResponse(_NO_RECORDING_BODY, status_code=404)
        return HTMLResponse(page)

    middleware = (
        [Middleware(_ChallengeEveryPage, challenge_page=pages.challenge)] if challenge else []
    )
    return Starlette(
        routes=[
            Route("/robots.txt", robots_file, methods=["GET"]),
            Route("/shopping/results/", search_results, methods=["GET"]),
            Route("/vehicledetail/{listing_id}/", vehicle_detail, methods=["GET"]),
        ],
        middleware=middleware,
    )


def run_demo_site(
    host: str,
    port: int,
    *,
    challenge: bool = False,
    robots: RobotsMode = "allow",
    gone_listing_ids: Collection[str] = (),
) -> None:
    """Serve the demo site with uvicorn until interrupted; options as `create_demo_site`."""
    app = create_demo_site(challenge=challenge, robots=robots, gone_listing_ids=gone_listing_ids)
    uvicorn.run(app, host=host, port=port)
