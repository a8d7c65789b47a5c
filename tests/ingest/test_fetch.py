"""PoliteFetcher against a real local HTTP server that records what it was asked."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from recordings import CARSCOM_PAGES

from carsearch.ingest.fetch import (
    ACCEPT,
    ACCEPT_LANGUAGE,
    MAX_REDIRECTS,
    FetchError,
    FetchFailed,
    FetchPolicy,
    PoliteFetcher,
    RobotsDisallowed,
    retry_after_seconds,
)

FIXTURES = CARSCOM_PAGES
CARSCOM_ROBOTS = (FIXTURES / "robots_excerpt.txt").read_text()
CHALLENGE_PAGE = (FIXTURES / "challenge_2026-07_cloudflare_403.html").read_bytes()

USER_AGENT = "CarSearchBot/0.1 (+https://example.org/bot)"
ALLOW_ALL = "User-agent: *\nAllow: /\n"
DISALLOW_ALL = "User-agent: *\nDisallow: /\n"
# Headers a request may carry: ours, and what HTTP/1.1 itself needs.
ALLOWED_REQUEST_HEADERS = {
    "host",
    "user-agent",
    "accept",
    "accept-language",
    "accept-encoding",
    "connection",
}
# Request starts are stamped by the server, after loopback and thread scheduling: allow
# them that much jitter against the interval the client keeps.
SERVER_JITTER = 0.03


@dataclass(frozen=True)
class SeenRequest:
    path: str
    headers: dict[str, str]
    started: float


class SiteState:
    """How the fake site answers, and what it was asked."""

    def __init__(self) -> None:
        self.base_url = ""
        self.reset()

    def reset(self) -> None:
        self.robots_status = 200
        self.robots_body = ALLOW_ALL
        self.requests: list[SeenRequest] = []
        self.answered: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def url(self, path: str) -> str:
        return self.base_url + path


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: SiteState) -> None:
        super().__init__(("127.0.0.1", 0), SiteHandler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A timed-out client has hung up by the time the slow answer is written.
        pass


class SiteHandler(BaseHTTPRequestHandler):
    """Routes: /robots.txt, /page/*, /slow?seconds=, /status/<code>?times=&retry_after=,
    /redirect?to=, /loop (redirects to itself), /cookie."""

    server: SiteServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        state = self.server.state
        headers = {name.lower(): value for name, value in self.headers.items()}
        with state.lock:
            state.requests.append(SeenRequest(self.path, headers, time.monotonic()))
            seen_before = state.answered[self.path]
            state.answered[self.path] += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._answer(state, seen_before)
        finally:
            with state.lock:
                state.in_flight -= 1

    def _answer(self, state: SiteState, seen_before: int) -> None:
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/robots.txt":
            self._send(state.robots_status, state.robots_body.encode(), "text/plain")
        elif url.path.startswith("/page/"):
            self._send(200, f"<html>{url.path}</html>".encode(), "text/html")
        elif url.path == "/slow":
            time.sleep(float(query["seconds"]))
            self._send(200, b"<html>slow</html>", "text/html")
        elif url.path.startswith("/status/"):
            self._answer_status(int(url.path.removeprefix("/status/")), query, seen_before)
        elif url.path == "/redirect":
            self._send(302, b"", "text/html", {"Location": query["to"]})
        elif url.path == "/loop":
            self._send(302, b"", "text/html", {"Location": "/loop"})
        elif url.path == "/cookie":
            self._send(200, b"<html>cookie</html>", "text/html", {"Set-Cookie": "cf=x; Path=/"})
        else:
            self._send(404, b"<html>Not Found</html>", "text/html")

    def _answer_status(self, status: int, query: dict[str, str], seen_before: int) -> None:
        # `times` answers with `status`, then 200; without `times`, `status` forever.
        if "times" in query and seen_before >= int(query["times"]):
            self._send(200, b"<html>recovered</html>", "text/html")
            return
        headers = {"Retry-After": query["retry_after"]} if "retry_after" in query else {}
        body = CHALLENGE_PAGE if status == 403 else f"<html>{status}</html>".encode()
        self._send(status, body, "text/html", headers)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class FakeTime:
    """An injectable clock and sleep: sleeping moves the clock and returns at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class TopOfRange(random.Random):
    """Full jitter that always draws its maximum, to read the backoff ceilings."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture(scope="module")
def site_server() -> Iterator[SiteState]:
    state = SiteState()
    server = SiteServer(state)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def site(site_server: SiteState) -> SiteState:
    site_server.reset()
    return site_server


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def polite(**overrides: Any) -> FetchPolicy:
    settings: dict[str, Any] = {
        "user_agent": USER_AGENT,
        "min_interval_seconds": 0.0,
        "timeout_seconds": 2.0,
        "max_retries": 3,
    }
    return FetchPolicy(**{**settings, **overrides})


@pytest.fixture
async def fetcher(fake_time: FakeTime) -> AsyncIterator[PoliteFetcher]:
    async with PoliteFetcher(
        polite(), sleep=fake_time.sleep, clock=fake_time.clock, rng=TopOfRange()
    ) as fetcher:
        yield fetcher


def with_fake_time(policy: FetchPolicy, fake_time: FakeTime, **options: Any) -> PoliteFetcher:
    return PoliteFetcher(policy, sleep=fake_time.sleep, clock=fake_time.clock, **options)


def closed_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port: int = listener.getsockname()[1]
    return port


# What is sent, what comes back


async def test_sends_its_own_user_agent_and_nothing_a_browser_would(
    site: SiteState, fetcher: PoliteFetcher
) -> None:
    await fetcher.fetch(site.url("/cookie"))
    await fetcher.fetch(site.url("/page/a"))

    assert site.paths() == ["/robots.txt", "/cookie", "/page/a"]
    for request in site.requests:
        assert request.headers["user-agent"] == USER_AGENT
        assert request.headers["accept"] == ACCEPT
        assert request.headers["accept-language"] == ACCEPT_LANGUAGE
        # No cookie sent back, no referer, no client hints.
        assert set(request.headers) <= ALLOWED_REQUEST_HEADERS


async def test_returns_the_page_after_redirects(site: SiteState, fetcher: PoliteFetcher) -> None:
    result = await fetcher.fetch(site.url("/redirect?to=/page/b"))

    assert result.url == site.url("/page/b")
    assert result.status == 200
    assert result.text == "<html>/page/b</html>"
    assert result.headers["content-type"] == "text/html"
    assert all(name == name.lower() for name in result.headers)
    assert result.attempts == 2
    assert site.paths() == ["/robots.txt", "/redirect?to=/page/b", "/page/b"]


async def test_a_redirect_loop_fails(site: SiteState, fetcher: PoliteFetcher) -> None:
    with pytest.raises(FetchFailed, match="redirects") as failure:
        await fetcher.fetch(site.url("/loop"))

    assert failure.value.status == 302
    assert site.paths().count("/loop") == MAX_REDIRECTS + 1
    assert fetcher.stats.failures == 1


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_other_4xx_are_returned_not_retried(
    site: SiteState, fetcher: PoliteFetcher, fake_time: FakeTime, status: int
) -> None:
    result = await fetcher.fetch(site.url(f"/status/{status}"))

    assert result.status == status
    assert result.attempts == 1
    assert site.paths() == ["/robots.txt", f"/status/{status}"]
    assert fake_time.sleeps == []
    assert fetcher.stats.retries == 0


async def test_a_403_challenge_page_comes_back_for_the_parser(
    site: SiteState, fetcher: PoliteFetcher
) -> None:
    result = await fetcher.fetch(site.url("/status/403"))

    assert result.status == 403
    assert result.text == CHALLENGE_PAGE.decode()
    assert "<title>Just a moment...</title>" in result.text


async def test_counts_requests_and_bytes(site: SiteState, fetcher: PoliteFetcher) -> None:
    first = await fetcher.fetch(site.url("/page/a"))
    second = await fetcher.fetch(site.url("/status/404"))

    assert fetcher.stats.requests == 3
    expected_bytes = len(ALLOW_ALL) + len(first.text) + len(second.text)
    assert fetcher.stats.bytes == expected_bytes


async def test_accepts_a_transport(site: SiteState) -> None:
    transport = httpx.AsyncHTTPTransport(retries=0)
    async with PoliteFetcher(polite(), transport=transport) as fetcher:
        result = await fetcher.fetch(site.url("/page/a"))

    assert result.status == 200


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/file", "file:///etc/passwd", "/page/a", "not a url", "http://"]
)
async def test_a_url_that_is_not_http_is_refused(
    site: SiteState, fetcher: PoliteFetcher, url: str
) -> None:
    with pytest.raises(ValueError, match="URL"):
        await fetcher.fetch(url)

    assert site.requests == []


# Pacing


async def test_requests_to_one_host_start_at_least_min_interval_apart(site: SiteState) -> None:
    interval = 0.2
    async with PoliteFetcher(polite(min_interval_seconds=interval, concurrency=4)) as fetcher:
        await asyncio.gather(*(fetcher.fetch(site.url(f"/page/{n}")) for n in range(4)))

    assert len(site.requests) == 5  # robots.txt counts as a request to the host
    starts = sorted(request.started for request in site.requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= interval - SERVER_JITTER


async def test_pacing_with_an_injected_clock(site: SiteState, fake_time: FakeTime) -> None:
    async with with_fake_time(polite(min_interval_seconds=2.0), fake_time) as fetcher:
        first = await fetcher.fetch(site.url("/page/a"))
        second = await fetcher.fetch(site.url("/page/b"))
        third = await fetcher.fetch(site.url("/page/c"))

    # robots.txt at t, then the pages at t+2, t+4, t+6.
    assert fake_time.sleeps == [2.0, 2.0, 2.0]
    assert [first.elapsed_seconds, second.elapsed_seconds, third.elapsed_seconds] == [2.0] * 3


async def test_never_more_requests_in_flight_than_concurrency(site: SiteState) -> None:
    policy = polite(concurrency=2, respect_robots=False)
    async with PoliteFetcher(policy) as fetcher:
        started = time.monotonic()
        await asyncio.gather(
            *(fetcher.fetch(site.url(f"/slow?seconds=0.15&n={n}")) for n in range(6))
        )
        took = time.monotonic() - started

    assert len(site.requests) == 6
    assert site.max_in_flight == 2
    assert took >= 3 * 0.15


# Retries


async def test_retries_503_then_succeeds(
    site: SiteState, fetcher: PoliteFetcher, fake_time: FakeTime
) -> None:
    result = await fetcher.fetch(site.url("/status/503?times=2"))

    assert result.status == 200
    assert result.text == "<html>recovered</html>"
    assert result.attempts == 3
    assert site.paths().count("/status/503?times=2") == 3
    assert fake_time.sleeps == [1.0, 2.0]  # base 1 s, doubled; TopOfRange draws the ceiling
    assert fetcher.stats.retries == 2
    assert fetcher.stats.failures == 0


async def test_backoff_is_exponential_with_full_jitter_up_to_the_cap(
    site: SiteState, fake_time: FakeTime
) -> None:
    policy = polite(max_retries=5, backoff_base_seconds=1.0, backoff_max_seconds=5.0)
    async with with_fake_time(policy, fake_time, rng=random.Random(7)) as fetcher:
        with pytest.raises(FetchFailed):
            await fetcher.fetch(site.url("/status/500"))

    ceilings = [1.0, 2.0, 4.0, 5.0, 5.0]
    draws = random.Random(7)
    assert fake_time.sleeps == [draws.uniform(0.0, ceiling) for ceiling in ceilings]


async def test_gives_up_after_max_retries(
    site: SiteState, fake_time: FakeTime, fetcher: PoliteFetcher
) -> None:
    with pytest.raises(FetchFailed, match="HTTP 503") as failure:
        await fetcher.fetch(site.url("/status/503"))

    assert isinstance(failure.value, FetchError)
    assert failure.value.status == 503
    assert failure.value.url == site.url("/status/503")
    assert site.paths().count("/status/503") == 4  # max_retries=3
    assert fetcher.stats.retries == 3
    assert fetcher.stats.failures == 1


async def test_a_timeout_is_retried_then_fails_without_status(
    site: SiteState, fake_time: FakeTime
) -> None:
    policy = polite(timeout_seconds=0.1, max_retries=1, respect_robots=False)
    async with with_fake_time(policy, fake_time) as fetcher:
        with pytest.raises(FetchFailed, match=r"no answer within 0\.1s") as failure:
            await fetcher.fetch(site.url("/slow?seconds=0.5"))

    assert failure.value.status is None
    assert site.paths() == ["/slow?seconds=0.5"] * 2


async def test_an_unreachable_host_fails_without_status(fake_time: FakeTime) -> None:
    policy = polite(max_retries=2, respect_robots=False)
    async with with_fake_time(policy, fake_time) as fetcher:
        with pytest.raises(FetchFailed, match="unreachable") as failure:
            await fetcher.fetch(f"http://127.0.0.1:{closed_port()}/page/a")

    assert failure.value.status is None
    assert fetcher.stats.requests == 3
    assert len(fake_time.sleeps) == 2


async def test_retry_after_seconds_is_honoured(
    site: SiteState, fetcher: PoliteFetcher, fake_time: FakeTime
) -> None:
    result = await fetcher.fetch(site.url("/status/429?times=1&retry_after=7"))

    assert result.status == 200
    assert result.attempts == 2
    assert fake_time.sleeps == [7.0]


async def test_retry_after_http_date_is_honoured(
    site: SiteState, fetcher: PoliteFetcher, fake_time: FakeTime
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    query = httpx.QueryParams({"times": "1", "retry_after": when})

    result = await fetcher.fetch(site.url(f"/status/503?{query}"))

    assert result.status == 200
    (delay,) = fake_time.sleeps
    assert 28 <= delay <= 30


async def test_retry_after_is_capped_at_backoff_max(site: SiteState, fake_time: FakeTime) -> None:
    async with with_fake_time(polite(backoff_max_seconds=120), fake_time) as fetcher:
        await fetcher.fetch(site.url("/status/429?times=1&retry_after=86400"))

    assert fake_time.sleeps == [120.0]


def test_retry_after_values() -> None:
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)

    assert retry_after_seconds("120", now=now) == 120.0
    assert retry_after_seconds(" 0 ", now=now) == 0.0
    assert retry_after_seconds("Wed, 01 Jul 2026 12:01:30 GMT", now=now) == 90.0
    assert retry_after_seconds("Wed, 01 Jul 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("-5", now=now) is None
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds(None, now=now) is None


# robots.txt


async def test_a_disallowed_url_is_never_requested(site: SiteState, fetcher: PoliteFetcher) -> None:
    site.robots_body = CARSCOM_ROBOTS

    with pytest.raises(RobotsDisallowed) as denied:
        await fetcher.fetch(site.url("/vehicledetail/8f3c1a/"))
    with pytest.raises(RobotsDisallowed):
        await fetcher.fetch(site.url("/shopping/results/?zip=60606&stock_type=used"))
    allowed = await fetcher.fetch(site.url("/page/research"))

    assert isinstance(denied.value, FetchError)
    assert denied.value.url == site.url("/vehicledetail/8f3c1a/")
    assert allowed.status == 200
    assert site.paths() == ["/robots.txt", "/page/research"]
    assert fetcher.stats.robots_denied == 2
    assert fetcher.robots_used is True


async def test_a_redirect_to_a_disallowed_url_is_not_followed(
    site: SiteState, fetcher: PoliteFetcher
) -> None:
    site.robots_body = CARSCOM_ROBOTS

    with pytest.raises(RobotsDisallowed):
        await fetcher.fetch(site.url("/redirect?to=/vehicledetail/8f3c1a/"))

    assert site.paths() == ["/robots.txt", "/redirect?to=/vehicledetail/8f3c1a/"]


async def test_robots_txt_is_read_once_per_host(site: SiteState, fetcher: PoliteFetcher) -> None:
    await asyncio.gather(*(fetcher.fetch(site.url(f"/page/{n}")) for n in range(5)))
    await fetcher.fetch(site.url("/page/last"))

    assert site.paths().count("/robots.txt") == 1
    assert len(site.requests) == 7


@pytest.mark.parametrize("status", [404, 410, 403])
async def test_robots_4xx_allows_everything(
    site: SiteState, fetcher: PoliteFetcher, status: int
) -> None:
    site.robots_status = status
    site.robots_body = DISALLOW_ALL  # an error page's body is not robots.txt

    result = await fetcher.fetch(site.url("/page/a"))

    assert result.status == 200
    assert fetcher.robots_used is True


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_robots_unavailable_disallows_everything(
    site: SiteState, fetcher: PoliteFetcher, status: int
) -> None:
    site.robots_status = status
    site.robots_body = ALLOW_ALL

    with pytest.raises(RobotsDisallowed, match="unreachable"):
        await fetcher.fetch(site.url("/page/a"))
    with pytest.raises(RobotsDisallowed):
        await fetcher.fetch(site.url("/page/b"))

    assert set(site.paths()) == {"/robots.txt"}
    assert fetcher.stats.robots_denied == 2
    assert fetcher.stats.failures == 0


async def test_robots_unreachable_host_disallows_everything(fetcher: PoliteFetcher) -> None:
    with pytest.raises(RobotsDisallowed, match="unreachable"):
        await fetcher.fetch(f"http://127.0.0.1:{closed_port()}/page/a")


async def test_robots_ignored_when_not_respected(site: SiteState, fake_time: FakeTime) -> None:
    site.robots_body = DISALLOW_ALL

    async with with_fake_time(polite(respect_robots=False), fake_time) as fetcher:
        result = await fetcher.fetch(site.url("/page/a"))

    assert result.status == 200
    assert site.paths() == ["/page/a"]
    assert fetcher.robots_used is False


@pytest.mark.parametrize(
    ("robots", "gap"),
    [
        ("User-agent: CarSearchBot\nCrawl-delay: 5\n\nUser-agent: *\nCrawl-delay: 1\n", 5.0),
        ("User-agent: *\nCrawl-delay: 5\n", 5.0),
        ("User-agent: OtherBot\nCrawl-delay: 30\n\nUser-agent: *\nAllow: /\n", 2.0),
        # Smaller than ours: min_interval_seconds still holds.
        ("User-agent: *\nCrawl-delay: 0.5\n", 2.0),
    ],
)
async def test_crawl_delay_for_our_agent_is_honoured(
    site: SiteState, fake_time: FakeTime, robots: str, gap: float
) -> None:
    site.robots_body = robots

    async with with_fake_time(polite(min_interval_seconds=2.0), fake_time) as fetcher:
        await fetcher.fetch(site.url("/page/a"))
        await fetcher.fetch(site.url("/page/b"))

    assert fake_time.sleeps == [gap, gap]


# Policy


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"user_agent": ""}, "product token"),
        ({"user_agent": "  CarSearchBot"}, "product token"),
        ({"user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}, "browser"),
        ({"min_interval_seconds": -1}, "min_interval_seconds"),
        ({"concurrency": 0}, "concurrency"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_max_seconds": -1}, "backoff"),
    ],
)
def test_policy_refuses_bad_settings(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        polite(**overrides)


def test_robots_token_is_the_product_token() -> None:
    assert polite().robots_token == "CarSearchBot"
