"""Polite HTTP fetching for scrapers: robots.txt, per-host pacing, retries with backoff.

One `PoliteFetcher` per source per run. It asks every host for its robots.txt once
(RFC 9309) and refuses what it disallows, starts at most one request per host every
`min_interval_seconds` (or the host's larger `Crawl-delay`), keeps at most `concurrency`
requests in flight, and retries timeouts, connection errors, 429 and 5xx with exponential
backoff and full jitter, honouring `Retry-After`.

It is honest about what it is: it sends the configured User-Agent, `Accept` and
`Accept-Language` and nothing a browser would add, keeps no cookies, and never tries to
get past a bot check. A 403 challenge page comes back as a `FetchResult` for the source's
parser to recognise.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpx
from protego import Protego

ACCEPT = "text/html,application/xhtml+xml"
ACCEPT_LANGUAGE = "en-US"
MAX_REDIRECTS = 10
# RFC 9309 2.3.1.2: follow at least five; past that robots.txt counts as unavailable.
MAX_ROBOTS_REDIRECTS = 5
# RFC 9309 2.5: parse at least the first 500 KiB.
MAX_ROBOTS_BYTES = 500 * 1024

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# RFC 9309 2.2.1: the product token is the part of the User-Agent a robots.txt names.
_PRODUCT_TOKEN = re.compile(r"^[A-Za-z_-]+")
# Keeps 2**n finite for absurd retry counts; the delay is capped long before that.
_MAX_BACKOFF_EXPONENT = 62

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class FetchError(Exception):
    """A URL the fetcher could not, or would not, fetch."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


class FetchFailed(FetchError):
    """Still a timeout, connection error, 429 or 5xx after every retry; or a redirect loop.

    `status` is the last HTTP status, None when the last attempt got no answer at all.
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(url, f"could not fetch {url}: {reason}")
        self.reason = reason
        self.status = status


class RobotsDisallowed(FetchError):
    """The host's robots.txt disallows the URL for us (or was unreachable: RFC 9309 2.3.1.4)."""

    def __init__(self, url: str, reason: str = "disallowed by robots.txt") -> None:
        super().__init__(url, f"not fetching {url}: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class FetchPolicy:
    """How politely one source is fetched."""

    user_agent: str
    min_interval_seconds: float = 2.0
    concurrency: int = 4
    timeout_seconds: float = 20
    max_retries: int = 4
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 120
    respect_robots: bool = True

    def __post_init__(self) -> None:
        if not _PRODUCT_TOKEN.match(self.user_agent):
            raise ValueError(
                "user_agent must start with the bot's product token, like "
                f"'CarSearchBot/0.1 (+https://example.org/bot)'; got {self.user_agent!r}"
            )
        if self.user_agent.lower().startswith("mozilla/"):
            raise ValueError(f"user_agent must not pass for a browser: {self.user_agent!r}")
        if self.min_interval_seconds < 0:
            raise ValueError(f"min_interval_seconds must be >= 0: {self.min_interval_seconds}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1: {self.concurrency}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be > 0: {self.timeout_seconds}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0: {self.max_retries}")
        if self.backoff_base_seconds < 0 or self.backoff_max_seconds < 0:
            raise ValueError("backoff_base_seconds and backoff_max_seconds must be >= 0")

    @property
    def robots_token(self) -> str:
        """The name robots.txt groups are matched against: "CarSearchBot" in "CarSearchBot/0.1"."""
        match = _PRODUCT_TOKEN.match(self.user_agent)
        assert match is not None  # checked in __post_init__
        return match.group()


@dataclass(frozen=True)
class FetchResult:
    """A page as the server answered it: 2xx, or a 4xx the caller decides about.

    `url` is the URL after redirects, `headers` has lower-case names, `attempts` counts
    every request this fetch sent (retries and redirects included), `elapsed_seconds`
    includes the time spent waiting for a turn and backing off.
    """

    url: str
    status: int
    text: str
    headers: dict[str, str]
    attempts: int
    elapsed_seconds: float


@dataclass
class FetchStats:
    """Counters for the run summary. `requests` and `bytes` include robots.txt."""

    requests: int = 0
    retries: int = 0
    robots_denied: int = 0
    failures: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class _RobotsRules:
    parser: Protego | None  # None: no robots.txt to read; `allow_all` decides
    allow_all: bool
    denial: str

    def allows(self, url: str, robots_token: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return bool(self.parser.can_fetch(url, robots_token))

    def crawl_delay(self, robots_token: str) -> float:
        if self.parser is None:
            return 0.0
        delay = self.parser.crawl_delay(robots_token)
        return float(delay) if delay is not None else 0.0


def _allow_everything() -> _RobotsRules:
    return _RobotsRules(parser=None, allow_all=True, denial="")


def _disallow_everything(why: str) -> _RobotsRules:
    return _RobotsRules(
        parser=None, allow_all=False, denial=f"{why}, so everything counts as disallowed"
    )


class PoliteFetcher:
    """Async polite GET for one source: use as `async with PoliteFetcher(policy) as fetcher`.

    `sleep`, `clock` and `rng` drive the pacing and backoff, so tests can replace them.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.stats = FetchStats()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._http = httpx.AsyncClient(
            transport=transport,
            headers={
                "User-Agent": policy.user_agent,
                "Accept": ACCEPT,
                "Accept-Language": ACCEPT_LANGUAGE,
            },
            timeout=policy.timeout_seconds,
            limits=httpx.Limits(max_connections=policy.concurrency),
            # A bot check's clearance cookie is how challenges get "solved"; keep none.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            # Redirects are followed here, so that every hop is paced and checked
            # against its own host's robots.txt.
            follow_redirects=False,
        )
        self._in_flight = asyncio.Semaphore(policy.concurrency)
        self._last_start: dict[str, float] = {}
        self._not_before: dict[str, float] = {}
        self._crawl_delays: dict[str, float] = {}
        self._robots: dict[str, _RobotsRules] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> PoliteFetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def robots_used(self) -> bool:
        """Whether robots.txt was read (or found missing) for at least one host."""
        return bool(self._robots)

    async def fetch(self, url: str) -> FetchResult:
        """GET `url`, following redirects.

        Returns 2xx and 4xx other than 429 (a 403 may be a bot check: the caller's parser
        decides). Raises RobotsDisallowed before sending anything robots.txt forbids,
        FetchFailed when retries run out or redirects loop, ValueError for a URL that is
        not http(s).
        """
        started = self._clock()
        current = _http_url(url)
        attempts = 0
        try:
            for _ in range(MAX_REDIRECTS + 1):
                await self._check_robots(current)
                response, tries = await self._get_with_retries(current)
                attempts += tries
                location = response.headers.get("location")
                if response.status_code not in _REDIRECT_STATUSES or not location:
                    return FetchResult(
                        url=str(current),
                        status=response.status_code,
                        text=response.text,
                        headers={name.lower(): value for name, value in response.headers.items()},
                        attempts=attempts,
                        elapsed_seconds=self._clock() - started,
                    )
                current = _redirect_target(url, current, location, response.status_code)
            raise FetchFailed(url, f"more than {MAX_REDIRECTS} redirects", response.status_code)
        except FetchFailed:
            self.stats.failures += 1
            raise

    async def _check_robots(self, url: httpx.URL) -> None:
        if not self.policy.respect_robots:
            return
        rules = await self._robots_for(url)
        if not rules.allows(str(url), self.policy.robots_token):
            self.stats.robots_denied += 1
            raise RobotsDisallowed(str(url), rules.denial)

    async def _robots_for(self, url: httpx.URL) -> _RobotsRules:
        robots_url = httpx.URL(scheme=url.scheme, host=url.host, port=url.port, path="/robots.txt")
        key = str(robots_url)
        # Concurrent first requests to a host wait for one robots.txt request.
        async with self._robots_locks.setdefault(key, asyncio.Lock()):
            rules = self._robots.get(key)
            if rules is None:
                rules = await self._read_robots(robots_url)
                self._robots[key] = rules
                delay = rules.crawl_delay(self.policy.robots_token)
                self._crawl_delays[url.host] = max(self._crawl_delays.get(url.host, 0.0), delay)
            return rules

    async def _read_robots(self, robots_url: httpx.URL) -> _RobotsRules:
        current = robots_url
        for _ in range(MAX_ROBOTS_REDIRECTS + 1):
            try:
                response, _tries = await self._get_with_retries(current)
            except FetchFailed as failure:
                return _disallow_everything(f"robots.txt was unreachable ({failure.reason})")
            status = response.status_code
            location = response.headers.get("location")
            if status in _REDIRECT_STATUSES and location:
                try:
                    current = _http_url(str(current.join(location)))
                except (ValueError, httpx.InvalidURL):
                    return _allow_everything()  # RFC 9309 2.3.1.2: counts as unavailable
                continue
            if 200 <= status < 300:
                text = response.content[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
                return _RobotsRules(
                    parser=Protego.parse(text), allow_all=True, denial="disallowed by robots.txt"
                )
            if 400 <= status < 500:
                return _allow_everything()
            return _disallow_everything(f"robots.txt answered HTTP {status}")
        return _allow_everything()

    async def _get_with_retries(self, url: httpx.URL) -> tuple[httpx.Response, int]:
        retry = 0
        while True:
            retry_after: float | None = None
            status: int | None = None
            try:
                response = await self._get_once(url)
            except (httpx.TimeoutException, TimeoutError):
                reason = f"no answer within {self.policy.timeout_seconds}s"
            except httpx.TransportError as error:
                reason = f"unreachable: {error!r}"
            except httpx.RequestError as error:
                raise FetchFailed(str(url), f"unreadable answer: {error!r}") from error
            else:
                status = response.status_code
                if status != 429 and status < 500:
                    return response, retry + 1
                reason = f"HTTP {status}"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if retry >= self.policy.max_retries:
                raise FetchFailed(str(url), f"{reason} (after {retry + 1} attempts)", status)
            delay = self._backoff_delay(retry, retry_after)
            if retry_after is not None:
                # The host asked everyone to wait, not just this request.
                self._hold_host(url.host, delay)
            await self._sleep(delay)
            retry += 1
            self.stats.retries += 1

    async def _get_once(self, url: httpx.URL) -> httpx.Response:
        # The turn is taken inside the semaphore: a request that waited for a slot after
        # its turn came could start less than an interval after the next one.
        async with self._in_flight:
            await self._wait_for_turn(url.host)
            self.stats.requests += 1
            # httpx's timeout is per read; this one bounds a server that trickles.
            async with asyncio.timeout(self.policy.timeout_seconds):
                response = await self._http.get(url)
        self.stats.bytes += len(response.content)
        return response

    async def _wait_for_turn(self, host: str) -> None:
        now = self._clock()
        start = now
        last = self._last_start.get(host)
        if last is not None:
            interval = max(self.policy.min_interval_seconds, self._crawl_delays.get(host, 0.0))
            start = max(start, last + interval)
        start = max(start, self._not_before.get(host, start))
        # Booked before sleeping, so that concurrent tasks line up behind each other.
        self._last_start[host] = start
        if start > now:
            await self._sleep(start - now)

    def _hold_host(self, host: str, seconds: float) -> None:
        until = self._clock() + seconds
        self._not_before[host] = max(self._not_before.get(host, until), until)

    def _backoff_delay(self, retry: int, retry_after: float | None) -> float:
        cap = self.policy.backoff_max_seconds
        if retry_after is not None:
            return min(retry_after, cap)
        ceiling = self.policy.backoff_base_seconds * 2 ** min(retry, _MAX_BACKOFF_EXPONENT)
        return self._rng.uniform(0.0, min(cap, ceiling))


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` value asks to wait (delta-seconds or HTTP-date), never < 0.

    None when there is no value or it is neither form; then the usual backoff applies.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _http_url(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise ValueError(f"not a URL: {url!r} ({error})") from error
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    return parsed


def _redirect_target(requested: str, current: httpx.URL, location: str, status: int) -> httpx.URL:
    try:
        return _http_url(str(current.join(location)))
    except (ValueError, httpx.InvalidURL) as error:
        raise FetchFailed(requested, f"redirected to {location!r}: {error}", status) from error
