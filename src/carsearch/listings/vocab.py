"""The fixed vocabularies of a listing. Stored as strings, enforced by CHECK constraints."""

from __future__ import annotations

from enum import StrEnum


class ListingStatus(StrEnum):
    active = "active"
    sold = "sold"
    removed = "removed"


class Condition(StrEnum):
    new = "new"
    used = "used"
    cpo = "cpo"


class BodyStyle(StrEnum):
    sedan = "sedan"
    suv = "suv"
    pickup = "pickup"
    coupe = "coupe"
    convertible = "convertible"
    hatchback = "hatchback"
    wagon = "wagon"
    minivan = "minivan"
    van = "van"


class Drivetrain(StrEnum):
    fwd = "fwd"
    rwd = "rwd"
    awd = "awd"
    four_wd = "4wd"


class FuelType(StrEnum):
    gasoline = "gasoline"
    diesel = "diesel"
    hybrid = "hybrid"
    plug_in_hybrid = "plug_in_hybrid"
    electric = "electric"
    flex_fuel = "flex_fuel"


class Transmission(StrEnum):
    automatic = "automatic"
    manual = "manual"
    cvt = "cvt"


class Color(StrEnum):
    """Color families: the many marketing names ("Midnight Black Metallic") map onto these."""

    black = "black"
    white = "white"
    gray = "gray"
    silver = "silver"
    red = "red"
    blue = "blue"
    green = "green"
    brown = "brown"
    beige = "beige"
    gold = "gold"
    orange = "orange"
    yellow = "yellow"
    purple = "purple"
    other = "other"


class AlertFrequency(StrEnum):
    instant = "instant"
    daily = "daily"
    weekly = "weekly"
    off = "off"


class RunStatus(StrEnum):
    """How a scrape run ended."""

    running = "running"
    succeeded = "succeeded"
    blocked = "blocked"  # the site answered with a challenge: the run stopped
    failed = "failed"  # the run itself broke (the site unreachable, a bug)


class SourceStatus(StrEnum):
    ok = "ok"
    blocked = "blocked"


class DealRating(StrEnum):
    """How an asking price compares with the estimated market value (see docs/APPRAISAL.md)."""

    great = "great"
    good = "good"
    fair = "fair"
    high = "high"
    overpriced = "overpriced"
    none = "none"  # not rated: see NoRatingReason


class NoRatingReason(StrEnum):
    no_price = "no_price"
    no_mileage = "no_mileage"
    too_few_comparables = "too_few_comparables"
    new_car = "new_car"
    rare_model = "rare_model"
