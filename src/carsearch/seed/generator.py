"""Synthetic but realistic inventory: deterministic for a given seed and size.

Pure: no I/O. The same (seed, count, now) always gives the same dealers and listings;
only timestamps move with `now`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from carsearch.listings.vin import VIN_CHARACTERS, with_check_digit, year_code
from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    Drivetrain,
    FuelType,
    ListingStatus,
    Transmission,
)
from carsearch.seed.geography import ZipPlace, dealer_locations
from carsearch.seed.reference import MakeSpec, ModelSpec

SEED_SOURCE = "seed"
OLDEST_MODEL_YEAR = 2008
LISTINGS_PER_DEALER = 60
SOLD_SHARE = 0.10
REPRICED_SHARE = 1 / 3
CALL_FOR_PRICE_SHARE = 0.005

_EXTERIOR_COLORS = {
    Color.white: 24, Color.black: 20, Color.gray: 18, Color.silver: 11, Color.blue: 10,
    Color.red: 9, Color.green: 2, Color.brown: 2, Color.beige: 1, Color.gold: 1,
    Color.orange: 1, Color.yellow: 0.5, Color.purple: 0.2, Color.other: 0.3,
}  # fmt: skip
_INTERIOR_COLORS = {
    Color.black: 60, Color.gray: 15, Color.beige: 14, Color.brown: 7, Color.red: 2,
    Color.white: 1.5, Color.blue: 0.5,
}  # fmt: skip
# How often a body or segment is on dealer lots, relative to a compact sedan.
_BODY_POPULARITY = {
    BodyStyle.suv: 3.0, BodyStyle.pickup: 2.6, BodyStyle.sedan: 1.6, BodyStyle.hatchback: 0.6,
    BodyStyle.minivan: 0.5, BodyStyle.coupe: 0.4, BodyStyle.convertible: 0.25,
    BodyStyle.wagon: 0.2, BodyStyle.van: 0.35,
}  # fmt: skip
_SEGMENT_POPULARITY = {
    "subcompact": 0.8, "compact": 1.4, "midsize": 1.3, "fullsize": 1.0, "luxury": 0.55,
    "performance": 0.35, "exotic": 0.04, "commercial": 0.4,
}  # fmt: skip
# Share of value lost per year, by segment; electric cars lose value faster still.
_YEARLY_DEPRECIATION = {
    "subcompact": 0.13, "compact": 0.12, "midsize": 0.125, "fullsize": 0.12, "luxury": 0.16,
    "performance": 0.12, "exotic": 0.09, "commercial": 0.11,
}  # fmt: skip
_BODY_DEPRECIATION_ADJUSTMENT = {BodyStyle.pickup: -0.03, BodyStyle.suv: -0.01}
_FEATURES_COMMON = (
    "Bluetooth", "Backup Camera", "Keyless Entry", "Cruise Control", "Apple CarPlay",
    "Android Auto", "Heated Seats", "Blind Spot Monitor", "Lane Keep Assist",
    "Adaptive Cruise Control", "Remote Start", "Push Button Start", "Alloy Wheels",
    "Sunroof", "Navigation System", "Leather Seats", "Power Liftgate", "Wireless Charging",
    "Premium Audio", "Heated Steering Wheel", "Ventilated Seats", "Head-Up Display",
    "360-Degree Camera", "Parking Sensors", "Automatic Emergency Braking", "Dual-Zone Climate",
)  # fmt: skip
_FEATURES_BY_BODY = {
    BodyStyle.pickup: ("Tow Package", "Bed Liner", "Trailer Brake Controller", "Running Boards"),
    BodyStyle.suv: ("Third Row Seating", "Roof Rails", "Tow Package", "Power Liftgate"),
    BodyStyle.minivan: ("Third Row Seating", "Power Sliding Doors", "Rear Entertainment"),
    BodyStyle.convertible: ("Power Top", "Wind Deflector"),
    BodyStyle.van: ("Cargo Partition", "Roof Rack"),
}
_SURNAMES = (
    "Anderson", "Baker", "Carter", "Daniels", "Ellis", "Fisher", "Garcia", "Hughes", "Irwin",
    "Jensen", "Keller", "Lopez", "Morgan", "Nguyen", "Olsen", "Parker", "Quinn", "Reyes",
    "Sullivan", "Turner", "Underwood", "Vance", "Walsh", "Young", "Zimmerman", "Hendrick",
    "Sewell", "Galpin", "Herb", "Rick", "Bob", "Hall", "Jordan", "Patel", "Kim",
)  # fmt: skip
_STREETS = (
    "Main St", "Auto Mall Dr", "Commerce Blvd", "Highway 1", "Industrial Pkwy",
    "Market St", "Route 9", "Motor Way", "Broadway", "Central Ave", "Dealer Row",
    "Expressway Dr", "Lincoln Hwy", "State Road 7", "Veterans Pkwy", "Airport Rd",
)  # fmt: skip
_INDEPENDENT_SUFFIXES = ("Motors", "Auto Sales", "Auto Group", "Car Company", "Autoplex")
_HIGHLIGHTS = (
    "one owner", "clean history report", "non-smoker", "recent service", "new tires",
    "garage kept", "all records", "factory warranty remaining",
)  # fmt: skip


@dataclass(slots=True)
class SeedDealer:
    id: int
    source_dealer_id: str
    name: str
    address: str
    place: ZipPlace
    phone: str
    website: str
    rating: float
    review_count: int
    franchise_make: MakeSpec | None


@dataclass(slots=True)
class SeedListing:
    id: int
    vin: str
    source_listing_id: str
    status: ListingStatus
    condition: Condition
    year: int
    make: str
    model: str
    trim: str
    body_style: BodyStyle
    drivetrain: Drivetrain
    fuel_type: FuelType
    transmission: Transmission
    engine: str
    exterior_color: Color
    interior_color: Color
    mileage: int
    price: int | None
    msrp: int
    dealer_id: int
    features: list[str]
    description: str
    first_seen_at: datetime
    last_seen_at: datetime
    sold_at: datetime | None
    # The car's value before the asking-price noise: what an appraisal should find.
    true_value: int
    price_history: list[tuple[int, datetime]] = field(default_factory=list)


def dealer_count(listings: int) -> int:
    return max(5, round(listings / LISTINGS_PER_DEALER))


def _weighted(rng: random.Random, weights: dict[Color, float]) -> Color:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


def _front_weighted(rng: random.Random, options: Sequence[str]) -> str:
    """The reference lists options most common first: pick accordingly."""
    if len(options) == 1:
        return options[0]
    return rng.choices(options, weights=[1 / (i + 1) ** 1.5 for i in range(len(options))])[0]


class InventoryGenerator:
    def __init__(
        self,
        makes: Sequence[MakeSpec],
        *,
        seed: int,
        now: datetime,
        first_dealer_id: int = 1,
        first_listing_id: int = 1,
        taken_vins: set[str] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = now
        self.makes = tuple(makes)
        self.first_dealer_id = first_dealer_id
        self.first_listing_id = first_listing_id
        self.vins: set[str] = set(taken_vins or ())
        self._current_year = now.year
        # Fractional "calendar age" anchor: a model year goes on sale the autumn before.
        self._now_fraction = now.year + (now.timetuple().tm_yday - 1) / 365.25
        self._model_table = [
            (make, model)
            for make in self.makes
            for model in make.models
            if model.years[1] >= OLDEST_MODEL_YEAR
        ]
        self._model_weights = self._popularity()

    def _popularity(self) -> list[float]:
        cumulative, total = [], 0.0
        for _make, model in self._model_table:
            weight = _BODY_POPULARITY.get(model.body_style, 0.5) * _SEGMENT_POPULARITY.get(
                model.segment, 0.5
            )
            # Models differ within a segment (Camry vs. a niche sedan); spread them.
            total += weight * self.rng.lognormvariate(0, 0.6)
            cumulative.append(total)
        return cumulative

    # -- dealers ---------------------------------------------------------------------

    def dealers(self, count: int) -> list[SeedDealer]:
        places, weights = dealer_locations()
        chosen = self.rng.choices(places, cum_weights=weights, k=count)
        return [self._dealer(self.first_dealer_id + i, place) for i, place in enumerate(chosen)]

    def _dealer(self, dealer_id: int, place: ZipPlace) -> SeedDealer:
        rng = self.rng
        franchise = rng.choice(self.makes) if rng.random() < 0.6 else None
        surname = rng.choice(_SURNAMES)
        if franchise is not None:
            name = f"{rng.choice((place.city, surname))} {franchise.name}"
        else:
            name = f"{rng.choice((place.city, surname))} {rng.choice(_INDEPENDENT_SUFFIXES)}"
        slug = "".join(ch for ch in name.lower() if ch.isalnum())
        area = place.area_code or f"{rng.randint(201, 989)}"
        return SeedDealer(
            id=dealer_id,
            source_dealer_id=f"{self.seed}-{dealer_id}",
            name=name,
            address=f"{rng.randint(100, 9899)} {rng.choice(_STREETS)}",
            place=place,
            phone=f"({area}) {rng.randint(200, 999)}-{rng.randint(0, 9999):04d}",
            website=f"https://www.{slug}.com",
            rating=round(min(5.0, max(1.0, rng.gauss(4.3, 0.45))), 1),
            review_count=int(rng.lognormvariate(5.2, 1.0)),
            franchise_make=franchise,
        )

    # -- listings --------------------------------------------------------------------

    def listings(self, count: int, dealers: Sequence[SeedDealer]) -> Iterator[SeedListing]:
        if count == 0:
            return  # reference data only: no dealers to spread listings over
        rng = self.rng
        # A few dealers are big (a national used-car chain's lot), most are medium.
        sizes = [rng.lognormvariate(0, 0.7) for _ in dealers]
        dealer_weights = _cumulative(sizes)
        dealer_picks = rng.choices(range(len(dealers)), cum_weights=dealer_weights, k=count)
        for offset, dealer_index in enumerate(dealer_picks):
            yield self._listing(self.first_listing_id + offset, dealers[dealer_index])

    def _pick_model(self, dealer: SeedDealer) -> tuple[MakeSpec, ModelSpec, Condition]:
        rng = self.rng
        franchise = dealer.franchise_make
        if franchise is not None and rng.random() < 0.45:
            current = [m for m in franchise.models if m.years[1] >= self._current_year - 1]
            if current:
                return franchise, rng.choice(current), Condition.new
        index = rng.choices(range(len(self._model_table)), cum_weights=self._model_weights)[0]
        make, model = self._model_table[index]
        return make, model, Condition.used

    def _pick_year(self, model: ModelSpec, condition: Condition) -> int:
        rng = self.rng
        first, last = (
            max(model.years[0], OLDEST_MODEL_YEAR),
            min(model.years[1], self._current_year),
        )
        if condition is Condition.new:
            on_sale = [
                y for y in (self._current_year - 1, self._current_year) if first <= y <= last
            ]
            return on_sale[0] if len(on_sale) == 2 and rng.random() < 0.2 else on_sale[-1]
        for _ in range(4):
            year = self._current_year - 1 - int(rng.expovariate(1 / 4.5))
            if first <= year <= last:
                return year
        return rng.randint(first, last)

    def _vin(self, make: MakeSpec, year: int) -> str:
        rng = self.rng
        alphabet = VIN_CHARACTERS
        letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
        while True:
            body = "".join(rng.choice(alphabet) for _ in range(3))
            restraint = rng.choice(letters if year >= 2010 else "0123456789")
            vin = (
                rng.choice(make.wmis)
                + body
                + restraint
                + rng.choice(alphabet)
                + "0"
                + year_code(year)
                + rng.choice(letters)
                + f"{rng.randrange(1_000_000):06d}"
            )
            vin = with_check_digit(vin)
            if vin not in self.vins:
                self.vins.add(vin)
                return vin

    def _listing(self, listing_id: int, dealer: SeedDealer) -> SeedListing:
        rng = self.rng
        make, model, condition = self._pick_model(dealer)
        year = self._pick_year(model, condition)
        age = max(0.3, self._now_fraction - year + 0.25)
        if condition is Condition.used and age <= 6 and rng.random() < 0.14:
            condition = Condition.cpo
        trim_index = rng.randrange(len(model.trims))
        trim_share = trim_index / (len(model.trims) - 1) if len(model.trims) > 1 else 0.5
        # Older model years sold new for less (about 2.5% a year).
        msrp = (model.msrp_min + (model.msrp_max - model.msrp_min) * trim_share) * (
            rng.uniform(0.97, 1.03) * 0.975 ** max(0, self._current_year - year)
        )
        fuel = FuelType(_front_weighted(rng, model.fuel_types))
        if condition is Condition.new:
            mileage = rng.randint(2, 60)
            true_value = msrp * 0.985
        else:
            yearly = max(1500.0, rng.gauss(12_500, 4_000))
            mileage = max(300, int(age * yearly))
            true_value = msrp * _retained_value(model, fuel, age, mileage, condition)
        true_value = max(2_000.0, true_value)
        price: int | None = _asking_price(rng, true_value)
        if rng.random() < CALL_FOR_PRICE_SHARE:
            price = None

        days_listed = min(180.0, rng.expovariate(1 / 32)) + rng.random()
        first_seen = self.now - timedelta(days=days_listed)
        status = ListingStatus.active
        sold_at = None
        last_seen = self.now - timedelta(minutes=rng.uniform(0, 240))
        if rng.random() < SOLD_SHARE:
            status = ListingStatus.sold
            sold_at = first_seen + (self.now - first_seen) * rng.uniform(0.3, 0.98)
            last_seen = sold_at - timedelta(hours=rng.uniform(1, 20))
            last_seen = max(first_seen, last_seen)
        engine = _engine_for(rng, model.engines, fuel)
        listing = SeedListing(
            id=listing_id,
            vin=self._vin(make, year),
            source_listing_id=f"{self.seed}-{listing_id}",
            status=status,
            condition=condition,
            year=year,
            make=make.name,
            model=model.name,
            trim=model.trims[trim_index],
            body_style=model.body_style,
            drivetrain=Drivetrain(_front_weighted(rng, model.drivetrains)),
            fuel_type=fuel,
            transmission=Transmission(_front_weighted(rng, model.transmissions)),
            engine=engine,
            exterior_color=_weighted(rng, _EXTERIOR_COLORS),
            interior_color=_weighted(rng, _INTERIOR_COLORS),
            mileage=mileage,
            price=price,
            msrp=int(round(msrp, -1)),
            dealer_id=dealer.id,
            features=self._features(model, trim_share),
            description="",
            first_seen_at=first_seen,
            last_seen_at=last_seen,
            sold_at=sold_at,
            true_value=int(true_value),
        )
        listing.description = self._description(listing, dealer)
        if price is not None:
            listing.price_history = self._price_history(price, first_seen, last_seen)
        return listing

    def _features(self, model: ModelSpec, trim_share: float) -> list[str]:
        rng = self.rng
        # Higher trims carry more equipment.
        count = 4 + int(trim_share * 8) + rng.randint(0, 3)
        pool = list(_FEATURES_COMMON)
        chosen = rng.sample(pool, min(count, len(pool)))
        extra = _FEATURES_BY_BODY.get(model.body_style, ())
        chosen.extend(f for f in extra if rng.random() < 0.5 and f not in chosen)
        return sorted(chosen)

    def _description(self, listing: SeedListing, dealer: SeedDealer) -> str:
        rng = self.rng
        title = f"{listing.year} {listing.make} {listing.model} {listing.trim}"
        if listing.condition is Condition.new:
            opening = f"Brand new {title} in {listing.exterior_color.value}"
        elif listing.condition is Condition.cpo:
            opening = f"Certified pre-owned {title} with {listing.mileage:,} miles"
        else:
            opening = f"{title} with {listing.mileage:,} miles"
        highlights = ", ".join(rng.sample(_HIGHLIGHTS, 2))
        features = ", ".join(listing.features[:3]).lower()
        return (
            f"{opening}. {listing.engine}, {listing.drivetrain.value.upper()}, "
            f"{listing.transmission.value} transmission. Equipped with {features}. "
            f"{highlights.capitalize()}. Visit {dealer.name} in {dealer.place.city}, "
            f"{dealer.place.state}."
        )

    def _price_history(
        self, current_price: int, first_seen: datetime, last_seen: datetime
    ) -> list[tuple[int, datetime]]:
        rng = self.rng
        span = (last_seen - first_seen).total_seconds()
        if span < 3 * 86_400 or rng.random() >= REPRICED_SHARE:
            return [(current_price, first_seen)]
        changes = rng.choices((1, 2, 3, 4), weights=(45, 30, 17, 8))[0]
        moments = sorted(
            first_seen + timedelta(seconds=rng.uniform(0.05, 1.0) * span) for _ in range(changes)
        )
        prices = [current_price]
        for _ in range(changes):
            later = prices[0]
            if rng.random() < 0.85:  # mostly drops: earlier prices were higher
                earlier = later / (1 - rng.uniform(0.01, 0.06))
            else:
                earlier = later / (1 + rng.uniform(0.01, 0.03))
            prices.insert(0, _round_price(rng, earlier))
        # Rounding can make two neighbours equal; a history row needs a change.
        history = [(prices[0], first_seen)]
        for price, moment in zip(prices[1:], moments, strict=True):
            if price != history[-1][0]:
                history.append((price, moment))
        if history[-1][0] != current_price:
            history.append((current_price, moments[-1]))
        return history


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _retained_value(
    model: ModelSpec, fuel: FuelType, age: float, mileage: int, condition: Condition
) -> float:
    rate = _YEARLY_DEPRECIATION.get(model.segment, 0.13)
    rate += _BODY_DEPRECIATION_ADJUSTMENT.get(model.body_style, 0.0)
    if fuel is FuelType.electric:
        rate += 0.05
    # The first owner's drive off the lot costs about 10%.
    retained: float = 0.9 * (1 - rate) ** age
    expected_miles = 12_000 * age
    retained *= min(1.15, max(0.6, math.exp(-2.5e-6 * (mileage - expected_miles))))
    if condition is Condition.cpo:
        retained *= 1.04
    return retained


def _round_price(rng: random.Random, value: float) -> int:
    if rng.random() < 0.5:
        return int(round(value, -2)) - 1  # the "$23,999" convention
    return int(round(value / 50) * 50)


def _asking_price(rng: random.Random, true_value: float) -> int:
    return _round_price(rng, true_value * rng.lognormvariate(0, 0.07))


def _engine_for(rng: random.Random, engines: Sequence[str], fuel: FuelType) -> str:
    keyword = {
        FuelType.hybrid: "hybrid",
        FuelType.plug_in_hybrid: "plug",
        FuelType.electric: "electric",
        FuelType.diesel: "diesel",
    }.get(fuel)
    if keyword is not None:
        matching = [engine for engine in engines if keyword in engine.lower()]
        if matching:
            return rng.choice(matching)
    plain = [
        engine
        for engine in engines
        if not any(k in engine.lower() for k in ("hybrid", "plug", "electric", "diesel"))
    ]
    chosen: str = rng.choice(plain or list(engines))
    return chosen
