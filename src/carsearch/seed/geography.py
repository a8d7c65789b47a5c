"""Where seeded dealers stand: real ZIP-code centroids, weighted towards big cities."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import zipcodes


@dataclass(frozen=True, slots=True)
class ZipPlace:
    zip: str
    city: str
    state: str
    latitude: float
    longitude: float
    area_code: str | None


@lru_cache
def dealer_locations() -> tuple[tuple[ZipPlace, ...], tuple[float, ...]]:
    """Standard, active ZIPs of the 50 states and DC, and a cumulative weight for each.

    zipcodes carries no population, so a city's size is read from how many ZIP codes it
    has: a ZIP's weight is the number of ZIPs its city shares. New York, Houston or Los
    Angeles then get many dealers and a village with one ZIP gets few, which is how
    dealerships are spread.
    """
    places = sorted(
        (
            ZipPlace(
                zip=record["zip_code"],
                city=record["city"].title(),
                state=record["state"],
                latitude=float(record["lat"]),
                longitude=float(record["long"]),
                area_code=(record.get("area_codes") or [None])[0],
            )
            for record in zipcodes.list_all()  # type: ignore[no-untyped-call]
            if record["zip_code_type"] == "STANDARD"
            and record["active"]
            and record["country"] == "US"
            and record["state"] not in {"PR", "VI", "GU", "AS", "MP", "FM", "MH", "PW"}
            and record["lat"]
            and record["long"]
        ),
        key=lambda place: place.zip,
    )
    city_sizes = Counter((place.city, place.state) for place in places)
    cumulative: list[float] = []
    total = 0.0
    for place in places:
        total += city_sizes[(place.city, place.state)]
        cumulative.append(total)
    return tuple(places), tuple(cumulative)
