"""ZIP-code centroids (from the `zipcodes` package) and the units of radius search."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import zipcodes

MILES_TO_METERS = 1609.344


@dataclass(frozen=True, slots=True)
class ZipCentroid:
    zip: str
    city: str
    state: str
    latitude: float
    longitude: float


@lru_cache(maxsize=1)
def _centroids_by_zip() -> dict[str, ZipCentroid]:
    # Reading the package's data takes about a second: done once, on first use.
    return {
        record["zip_code"]: ZipCentroid(
            zip=record["zip_code"],
            city=record["city"],
            state=record["state"],
            latitude=float(record["lat"]),
            longitude=float(record["long"]),
        )
        for record in zipcodes.list_all()  # type: ignore[no-untyped-call]
        if record["lat"] and record["long"]
    }


def zip_centroid(zip_code: str) -> ZipCentroid | None:
    """The centroid of a 5-digit US ZIP code, or None for a ZIP the package doesn't know."""
    return _centroids_by_zip().get(zip_code.strip())
