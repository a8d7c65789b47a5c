"""NHTSA vPIC: the HTTP client and the mapping of its decode results to DecodedVin.

vPIC answers bad VINs with HTTP 200 and a comma-separated `ErrorCode`; the car is often
fully decoded anyway, so the mapping keeps whatever decoded. Labels change between
vPIC releases: branch on error codes, never on `ErrorText`.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from carsearch.errors import UpstreamUnavailable
from carsearch.ingest.vin_decode import DecodedVin
from carsearch.listings.vin import is_valid_vin, model_year, normalize_vin

VPIC_BASE_URL = "https://vpic.nhtsa.dot.gov/api/"
MAX_VINS_PER_BATCH = 50
CHECK_DIGIT_ERROR = "1"

_BATCH_PATH = "vehicles/DecodeVINValuesBatch/"
_SINGLE_PATH = "vehicles/DecodeVinValues/"
_USER_AGENT = "CarSearch VIN decoder"
# vPIC's ways of saying "no value"; numeric fields also send "0".
_MISSING_TEXTS = frozenset({"", "Not Applicable"})
# Partial VINs use * for unknown positions; ";" and "," would corrupt the batch body.
_VIN_QUERY = re.compile(r"^[A-Z0-9*]{1,17}$")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class VpicUnavailable(UpstreamUnavailable):
    """vPIC timed out, was unreachable, refused (429/5xx), or answered something not JSON."""


def decoded_from_vpic(result: Mapping[str, Any]) -> DecodedVin:
    """Map one `Results[]` item of DecodeVinValues / DecodeVINValuesBatch."""
    values = present_values(result)
    vin = normalize_vin(values.get("VIN", ""))
    error_codes = parse_error_codes(values.get("ErrorCode"))
    cylinders = _positive_int(values.get("EngineCylinders"))
    displacement_l = _positive_number(values.get("DisplacementL"))
    return DecodedVin(
        vin=vin,
        valid_check_digit=is_valid_vin(vin) and CHECK_DIGIT_ERROR not in error_codes,
        source="vpic",
        model_year=_positive_int(values.get("ModelYear")) or model_year(vin),
        make=values.get("Make"),
        model=values.get("Model"),
        trim=values.get("Trim"),
        series=values.get("Series"),
        body_class=values.get("BodyClass"),
        drive_type=values.get("DriveType"),
        fuel_type=values.get("FuelTypePrimary"),
        engine=engine_description(displacement_l, cylinders, values.get("EngineConfiguration")),
        cylinders=cylinders,
        displacement_l=displacement_l,
        transmission=transmission_description(
            values.get("TransmissionStyle"), _positive_int(values.get("TransmissionSpeeds"))
        ),
        doors=_positive_int(values.get("Doors")),
        manufacturer=values.get("Manufacturer"),
        plant_country=values.get("PlantCountry"),
        vehicle_type=values.get("VehicleType"),
        error_codes=error_codes,
        error_text=values.get("ErrorText"),
        raw=values,
    )


def present_values(result: Mapping[str, Any]) -> dict[str, str]:
    """The result's values that say something, trimmed."""
    values: dict[str, str] = {}
    for key, value in result.items():
        if value is None:
            continue
        text = str(value).strip()
        if text not in _MISSING_TEXTS:
            values[str(key)] = text
    return values


def parse_error_codes(error_code: str | None) -> tuple[str, ...]:
    if error_code is None:
        return ()
    return tuple(code.strip() for code in error_code.split(",") if code.strip())


def engine_description(
    displacement_l: float | None, cylinders: int | None, configuration: str | None
) -> str | None:
    """Like "3.5L V6", "2.0L 4-cyl"; None when vPIC gave none of the three."""
    parts: list[str] = []
    if displacement_l is not None:
        parts.append(f"{displacement_l:.1f}L")
    layout = _cylinder_layout(configuration)
    if cylinders is not None:
        parts.append(f"{layout}{cylinders}" if layout else f"{cylinders}-cyl")
    elif configuration is not None:
        parts.append(configuration)
    return " ".join(parts) or None


def _cylinder_layout(configuration: str | None) -> str | None:
    # Matched loosely because vPIC rewords its labels between releases.
    if configuration is None:
        return None
    label = configuration.lower()
    if label.startswith("v"):
        return "V"
    if label.startswith("w"):
        return "W"
    if "line" in label or label.startswith("straight"):
        return "I"
    if "opposed" in label or "boxer" in label or "flat" in label:
        return "H"
    return None


def transmission_description(style: str | None, speeds: int | None) -> str | None:
    """Like "8-speed Automatic"."""
    parts = [f"{speeds}-speed"] if speeds is not None else []
    if style is not None:
        parts.append(style)
    return " ".join(parts) or None


def _positive_number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if number > 0 and math.isfinite(number) else None


def _positive_int(text: str | None) -> int | None:
    number = _positive_number(text)
    return int(number) if number is not None and number.is_integer() else None


class _TransientFailure(Exception):
    """A failure worth one more try."""

    def __init__(self, message: str, *, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VpicClient:
    """Async vPIC client: at most one request per `min_interval` seconds, one retry.

    Pass an `httpx.AsyncClient` to share a connection pool (its owner closes it);
    otherwise the client makes its own and `aclose()` closes it.
    """

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        *,
        base_url: str = VPIC_BASE_URL,
        timeout: float = 15.0,
        min_interval: float = 1.0,
        retry_delay: float = 2.0,
        max_retry_after: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
    ) -> None:
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(headers={"User-Agent": _USER_AGENT})
        self._timeout = timeout
        self._min_interval = min_interval
        self._retry_delay = retry_delay
        self._max_retry_after = max_retry_after
        self._sleep = sleep
        self._clock = clock
        self._one_request_at_a_time = asyncio.Lock()
        self._last_request_at: float | None = None

    async def __aenter__(self) -> VpicClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def decode_batch(self, vins: Sequence[str]) -> dict[str, DecodedVin]:
        """Decode with DecodeVINValuesBatch, 50 VINs a request.

        Keys are the normalized VINs; a VIN vPIC sent no result for is absent. Raises
        VpicUnavailable if any request fails (decoded batches before it are not returned:
        send at most 50 VINs a call to keep them), ValueError for a string that is not a
        full or partial (`*`) VIN.
        """
        queries = _vin_queries(vins)
        decoded: dict[str, DecodedVin] = {}
        for batch in _batches(queries, MAX_VINS_PER_BATCH):
            # format=json must be in the body: in the query string vPIC answers XML.
            form = {"format": "json", "data": ";".join(batch)}
            document = await self._request("POST", _BATCH_PATH, data=form)
            decoded.update(_records_for(batch, _results_of(document)))
        return decoded

    async def decode(self, vin: str) -> DecodedVin | None:
        """Decode one VIN with DecodeVinValues; None if vPIC sent no result for it."""
        (query,) = _vin_queries([vin])
        document = await self._request("GET", _SINGLE_PATH + query, params={"format": "json"})
        return _records_for([query], _results_of(document)).get(query)

    async def _request(self, method: str, path: str, **options: Any) -> Any:
        async with self._one_request_at_a_time:
            try:
                return await self._attempt(method, path, **options)
            except _TransientFailure as failure:
                if failure.retry_after > self._max_retry_after:
                    raise VpicUnavailable(str(failure)) from failure
                await self._sleep(max(self._retry_delay, failure.retry_after))
            try:
                return await self._attempt(method, path, **options)
            except _TransientFailure as failure:
                raise VpicUnavailable(str(failure)) from failure

    async def _attempt(self, method: str, path: str, **options: Any) -> Any:
        await self._wait_for_turn()
        url = self._base_url + path
        try:
            response = await self._http.request(method, url, timeout=self._timeout, **options)
        except httpx.TimeoutException as error:
            raise _TransientFailure(f"vPIC did not answer within {self._timeout}s") from error
        except httpx.RequestError as error:
            raise _TransientFailure(f"vPIC unreachable: {error!r}") from error
        status = response.status_code
        if status == 429 or status >= 500:
            raise _TransientFailure(
                f"vPIC answered HTTP {status}", retry_after=_retry_after_seconds(response)
            )
        if status != 200:
            raise VpicUnavailable(f"vPIC answered HTTP {status} for {method} {path}")
        try:
            return response.json()
        except ValueError as error:
            content_type = response.headers.get("content-type", "no content type")
            raise VpicUnavailable(
                f"vPIC answered a body that is not JSON ({content_type})"
            ) from error

    async def _wait_for_turn(self) -> None:
        if self._last_request_at is not None:
            wait = self._last_request_at + self._min_interval - self._clock()
            if wait > 0:
                await self._sleep(wait)
        self._last_request_at = self._clock()


def _vin_queries(vins: Sequence[str]) -> list[str]:
    queries = list(dict.fromkeys(normalize_vin(vin) for vin in vins))
    for query in queries:
        if not _VIN_QUERY.match(query):
            raise ValueError(f"not a VIN (17 letters/digits, * for unknown): {query!r}")
    return queries


def _results_of(document: Any) -> list[Mapping[str, Any]]:
    results = document.get("Results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise VpicUnavailable("vPIC answered JSON without a Results list")
    return [result for result in results if isinstance(result, dict)]


def _records_for(
    queries: Sequence[str], results: Sequence[Mapping[str, Any]]
) -> dict[str, DecodedVin]:
    records = {record.vin: record for record in map(decoded_from_vpic, results)}
    return {query: records[query] for query in queries if query in records}


def _retry_after_seconds(response: httpx.Response) -> float:
    # Only the delta-seconds form; an HTTP date is rare from vPIC and then the usual
    # backoff applies.
    try:
        return max(0.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


def _batches(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
