"""Scraped values in, canonical listing values out.

Pure functions, no I/O. A parser keeps what the page shows ("All-wheel Drive",
"Crystal Black Pearl", "MERCEDES-BENZ"); this module maps those strings onto our
vocabularies (`carsearch.listings.vocab`) and reference makes and models, and decides
whether a scraped listing may be stored at all.

- `Catalog` knows the reference makes and models and matches raw names against them,
  ignoring case, spaces, hyphens, punctuation and accents.
- `body_style`, `drivetrain`, `fuel_type`, `transmission` and `color_family` map one raw
  string onto one vocabulary value, or None when the string says nothing we can use.
- `normalize_listing` turns a `ScrapedListing` into a `NormalizedListing`, or into a
  `Rejected` with a short reason the pipeline counts. A make or model that is not in the
  catalog is not a reason to reject: the cleaned raw name is kept and flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Literal

from carsearch.ingest.records import ScrapedDealer, ScrapedListing
from carsearch.listings.vin import is_valid_vin, model_year, normalize_vin
from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    Drivetrain,
    FuelType,
    Transmission,
)
from carsearch.seed.reference import load_reference

MIN_MODEL_YEAR = 1981  # the first year of 17-character VINs
# Below this a price is a placeholder ($0, $1, "$123"), not an asking price.
MIN_PLAUSIBLE_PRICE = 500
MAX_PLAUSIBLE_PRICE = 5_000_000
MAX_PLAUSIBLE_MILEAGE = 1_500_000
# EVs are rated in MPGe, up to about 140.
MAX_PLAUSIBLE_MPG = 200
# Column widths of `listings`: a longer value would fail the insert.
MAX_MAKE_LENGTH = 64
MAX_MODEL_LENGTH = 64
MAX_TRIM_LENGTH = 128
MAX_ENGINE_LENGTH = 128
# The VIN's year code repeats every 30 years; the position-7 rule that tells the cycles
# apart is not followed by every manufacturer.
_VIN_YEAR_CYCLE = 30

RejectReason = Literal[
    "missing_vin",
    "invalid_vin",
    "missing_make",
    "make_too_long",
    "missing_model",
    "model_too_long",
    "missing_year",
    "bad_year",
    "year_vin_mismatch",
    "missing_condition",
    "implausible_price",
    "implausible_mileage",
]

# Common names of makes that are not in the reference data's own aliases. Each applies
# only when its make is in the catalog.
COMMON_MAKE_ALIASES: Mapping[str, tuple[str, ...]] = {
    "Alfa Romeo": ("Alfa",),
    "Aston Martin": ("Aston",),
    "Cadillac": ("Caddy",),
    "Chevrolet": ("Chevy", "Chev"),
    "Land Rover": ("Landrover",),
    "Lamborghini": ("Lambo",),
    "Mercedes-Benz": ("Mercedes", "Benz", "Merc", "MB", "Mercedes-AMG"),
    "Rolls-Royce": ("Rolls",),
    "Volkswagen": ("VW", "Volkswagon"),
}

_EMPTY_VALUES = frozenset(
    {"", "unknown", "unk", "n a", "na", "none", "null", "not specified", "not available", "tbd"}
)


# Matching keys


def match_key(text: str) -> str:
    """The form names are compared in: "Mercedes-Benz" and "mercedes benz" -> "mercedesbenz"."""
    return "".join(c for c in _fold(text) if c.isalnum())


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> tuple[str, ...]:
    """Lower-case alphanumeric words: "All-wheel Drive" -> ("all", "wheel", "drive")."""
    return tuple(re.findall(r"[a-z0-9]+", _fold(text)))


def _has_phrase(words: tuple[str, ...], phrase: str) -> bool:
    wanted = tuple(phrase.split())
    size = len(wanted)
    return any(words[i : i + size] == wanted for i in range(len(words) - size + 1))


def _says_nothing(words: tuple[str, ...]) -> bool:
    return " ".join(words) in _EMPTY_VALUES


def clean_text(value: str | None) -> str | None:
    """Whitespace collapsed and trimmed; None when nothing is left."""
    if value is None:
        return None
    cleaned = " ".join(value.split())
    return cleaned or None


# Catalog


class _KeyIndex:
    """Match keys to canonical names. Names win over aliases; an alias claimed by two
    different names is ambiguous and dropped."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._ambiguous: set[str] = set()

    def add_name(self, name: str) -> None:
        key = match_key(name)
        if key:
            self._names.setdefault(key, name)

    def add_alias(self, alias: str, name: str) -> None:
        key = match_key(alias)
        if not key or key in self._ambiguous:
            return
        known = self._aliases.get(key)
        if known is not None and known != name:
            del self._aliases[key]
            self._ambiguous.add(key)
        else:
            self._aliases[key] = name

    def get(self, key: str) -> str | None:
        return self._names.get(key) or self._aliases.get(key)


class Catalog:
    """Reference makes and their models, for matching scraped names."""

    __slots__ = ("_body_styles", "_makes", "_models")

    def __init__(
        self,
        makes: _KeyIndex,
        models: Mapping[str, _KeyIndex],
        body_styles: Mapping[tuple[str, str], BodyStyle],
    ) -> None:
        self._makes = makes
        self._models = dict(models)
        self._body_styles = dict(body_styles)

    @classmethod
    def from_reference(
        cls,
        makes: Iterable[tuple[str, Iterable[str]]],
        *,
        make_aliases: Mapping[str, Iterable[str]] | None = None,
        model_aliases: Mapping[tuple[str, str], Iterable[str]] | None = None,
        body_styles: Mapping[tuple[str, str], BodyStyle] | None = None,
    ) -> Catalog:
        """Build from (make name, its model names) rows, as in the `makes` and `models`
        tables. Aliases and reference body styles are keyed by canonical names."""
        make_index = _KeyIndex()
        model_indexes: dict[str, _KeyIndex] = {}
        for make, models in makes:
            make_index.add_name(make)
            index = model_indexes.setdefault(make, _KeyIndex())
            for model in models:
                index.add_name(model)
        for make, aliases in (make_aliases or {}).items():
            for alias in aliases:
                make_index.add_alias(alias, make)
        for make, aliases in COMMON_MAKE_ALIASES.items():
            if make in model_indexes:
                for alias in aliases:
                    make_index.add_alias(alias, make)
        for (make, model), aliases in (model_aliases or {}).items():
            if make in model_indexes:
                for alias in aliases:
                    model_indexes[make].add_alias(alias, model)
        return cls(make_index, model_indexes, body_styles or {})

    @classmethod
    def from_packaged(cls) -> Catalog:
        """The reference makes and models shipped in seed/data/vehicles.json."""
        return _packaged_catalog()

    @property
    def makes(self) -> tuple[str, ...]:
        return tuple(self._models)

    def canonical_make(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        return self._makes.get(match_key(raw))

    def canonical_model(self, make: str | None, raw: str | None) -> str | None:
        """The reference model `raw` names, `make` being a raw or canonical make.

        Trailing words the reference does not know ("Civic Hybrid", "Silverado 1500 LT")
        are tolerated: the longest leading run of words that names a model wins. A leading
        make name ("Mercedes-Benz C-Class") is skipped.
        """
        canonical_make = self.canonical_make(make)
        if canonical_make is None or raw is None:
            return None
        index = self._models[canonical_make]
        words = raw.split()
        found = _longest_prefix_match(index, words)
        for size in range(1, min(len(words), 4)):
            if found is not None:
                break
            if self.canonical_make(" ".join(words[:size])) == canonical_make:
                found = _longest_prefix_match(index, words[size:])
        return found

    def reference_body_style(self, make: str, model: str) -> BodyStyle | None:
        """The body style the reference data gives a canonical make and model."""
        return self._body_styles.get((make, model))


def _longest_prefix_match(index: _KeyIndex, words: list[str]) -> str | None:
    for end in range(len(words), 0, -1):
        found = index.get(match_key(" ".join(words[:end])))
        if found is not None:
            return found
    return None


@cache
def _packaged_catalog() -> Catalog:
    reference = load_reference()
    return Catalog.from_reference(
        ((make.name, (model.name for model in make.models)) for make in reference),
        make_aliases={make.name: make.aliases for make in reference},
        model_aliases={
            (make.name, model.name): model.aliases for make in reference for model in make.models
        },
        body_styles={
            (make.name, model.name): model.body_style for make in reference for model in make.models
        },
    )


# Vocabulary mappers

_BODY_STYLE_WORDS: tuple[tuple[BodyStyle, frozenset[str], tuple[str, ...]], ...] = (
    # (style, any of these words, or any of these phrases); the first rule that matches wins.
    (
        BodyStyle.convertible,
        frozenset({"convertible", "cabriolet", "cabrio", "roadster", "spyder", "spider"}),
        ("drop top",),
    ),
    (BodyStyle.minivan, frozenset({"minivan"}), ("mini van",)),
    (BodyStyle.van, frozenset({"van", "vans"}), ()),
    (
        BodyStyle.pickup,
        frozenset({"pickup", "truck", "cab", "supercab", "supercrew", "crewmax"}),
        ("pick up",),
    ),
    (
        BodyStyle.suv,
        frozenset({"suv", "suvs", "crossover", "cuv"}),
        ("sport utility", "sports utility"),
    ),
    (BodyStyle.wagon, frozenset({"wagon", "estate", "sportwagen", "avant"}), ()),
    (
        BodyStyle.hatchback,
        frozenset({"hatchback", "hatch", "liftback", "sportback"}),
        (),
    ),
    (BodyStyle.coupe, frozenset({"coupe"}), ()),
    (BodyStyle.sedan, frozenset({"sedan", "saloon"}), ()),
)


def body_style(raw: str | None) -> BodyStyle | None:
    """cars.com's "Passenger Van" and "Cargo Van" are both `van`: the page does not tell
    a minivan from a full-size van (`normalize_listing` asks the catalog)."""
    words = _words(raw or "")
    for style, style_words, phrases in _BODY_STYLE_WORDS:
        if style_words.intersection(words) or any(_has_phrase(words, p) for p in phrases):
            return style
    return None


def drivetrain(raw: str | None) -> Drivetrain | None:
    """None for "2WD" and "4x2": on a truck they mean rear-wheel drive, on a crossover
    front-wheel drive."""
    words = _words(raw or "")
    if {"awd", "4matic", "xdrive", "quattro", "4motion", "allwheel", "sawd"}.intersection(
        words
    ) or _has_phrase(words, "all wheel"):
        return Drivetrain.awd
    if (
        {"4wd", "4x4", "fourwheel", "4wheel"}.intersection(words)
        or _has_phrase(words, "four wheel")
        or _has_phrase(words, "4 wheel")
    ):
        return Drivetrain.four_wd
    if {"fwd", "frontwheel"}.intersection(words) or _has_phrase(words, "front wheel"):
        return Drivetrain.fwd
    if {"rwd", "rearwheel", "sdrive"}.intersection(words) or _has_phrase(words, "rear wheel"):
        return Drivetrain.rwd
    return None


def fuel_type(raw: str | None) -> FuelType | None:
    """Mild hybrids ("Gasoline/Mild Electric Hybrid") are `hybrid`. Fuels outside our
    vocabulary (hydrogen, natural gas, propane) give None, not `gasoline`."""
    words = _words(raw or "")
    if {"hydrogen", "cng", "lpg", "propane"}.intersection(words) or any(
        _has_phrase(words, p) for p in ("fuel cell", "natural gas")
    ):
        return None
    if {"phev", "plugin"}.intersection(words) or _has_phrase(words, "plug in"):
        return FuelType.plug_in_hybrid
    if {"hybrid", "hev", "mhev"}.intersection(words):
        return FuelType.hybrid
    if {"electric", "ev", "bev", "battery"}.intersection(words):
        # "Gas/Electric" without the word hybrid is still a hybrid.
        if {"gas", "gasoline", "petrol"}.intersection(words):
            return FuelType.hybrid
        return FuelType.electric
    if {"flex", "flexible", "e85", "ffv"}.intersection(words):
        return FuelType.flex_fuel
    if {"diesel", "biodiesel", "tdi"}.intersection(words):
        return FuelType.diesel
    if {"gas", "gasoline", "unleaded", "premium", "regular", "petrol"}.intersection(words):
        return FuelType.gasoline
    return None


_AUTOMATIC_WORDS = frozenset(
    {
        "automatic",
        "auto",
        "automated",
        "automanual",
        "dct",
        "dsg",
        "pdk",
        "tiptronic",
        "steptronic",
        "powershift",
        "a",
    }
)


def transmission(raw: str | None) -> Transmission | None:
    """A CVT is `cvt` even when the page calls it "Automatic CVT". Dual-clutch and
    automated manual gearboxes are `automatic`; so is an automatic "with manual mode"."""
    words = _words(raw or "")
    if {"cvt", "ecvt", "ivt", "xtronic", "lineartronic", "variable", "continuously"}.intersection(
        words
    ):
        return Transmission.cvt
    if (
        _AUTOMATIC_WORDS.intersection(words)
        or any(
            _has_phrase(words, p)
            for p in ("dual clutch", "single speed", "1 speed", "direct drive")
        )
        or any(re.fullmatch(r"\d+a(?:t)?", w) for w in words)
    ):
        return Transmission.automatic
    if {"manual", "mt", "stick", "m"}.intersection(words) or any(
        re.fullmatch(r"\d+m(?:t)?", w) for w in words
    ):
        return Transmission.manual
    return None


_BASIC_COLORS: Mapping[str, Color] = {
    **{color.value: color for color in Color if color is not Color.other},
    "grey": Color.gray,
}
# Marketing words that name a color on their own ("Ebony", "Navy", "Modern Steel").
# Tan, camel and stone are `beige`: the light tan of leather and paint, not a brown.
_COLOR_KEYWORDS: Mapping[str, Color] = {
    **dict.fromkeys(("ebony", "onyx", "jet", "obsidian", "raven", "noir", "midnight"), Color.black),
    **dict.fromkeys(
        ("pearl", "snow", "alabaster", "chalk", "frost", "glacier", "arctic"),
        Color.white,
    ),
    **dict.fromkeys(
        (
            "charcoal",
            "graphite",
            "steel",
            "titanium",
            "slate",
            "pewter",
            "gunmetal",
            "granite",
            "anthracite",
            "ash",
            "smoke",
            "magnetic",
            "magnetite",
            "meteor",
            "tungsten",
        ),
        Color.gray,
    ),
    **dict.fromkeys(
        ("platinum", "quicksilver", "ingot", "aluminum", "aluminium", "chrome", "sterling"),
        Color.silver,
    ),
    **dict.fromkeys(
        (
            "burgundy",
            "maroon",
            "crimson",
            "scarlet",
            "ruby",
            "cherry",
            "garnet",
            "wine",
            "merlot",
            "cabernet",
            "sangria",
            "paprika",
            "claret",
        ),
        Color.red,
    ),
    **dict.fromkeys(
        (
            "navy",
            "azure",
            "sapphire",
            "cobalt",
            "indigo",
            "aegean",
            "teal",
            "cyan",
            "turquoise",
            "aqua",
            "denim",
            "marine",
        ),
        Color.blue,
    ),
    **dict.fromkeys(("emerald", "jade", "olive", "lime", "sage", "moss", "forest"), Color.green),
    **dict.fromkeys(
        (
            "bronze",
            "copper",
            "mocha",
            "cocoa",
            "chocolate",
            "espresso",
            "coffee",
            "chestnut",
            "mahogany",
            "walnut",
            "saddle",
            "cognac",
            "caramel",
            "umber",
            "sienna",
        ),
        Color.brown,
    ),
    **dict.fromkeys(
        (
            "tan",
            "camel",
            "ivory",
            "cream",
            "stone",
            "sand",
            "sandstone",
            "almond",
            "parchment",
            "oatmeal",
            "cashmere",
            "linen",
            "wheat",
            "bisque",
            "buff",
            "taupe",
            "khaki",
            "fawn",
            "oyster",
            "mushroom",
        ),
        Color.beige,
    ),
    **dict.fromkeys(("champagne", "golden"), Color.gold),
    **dict.fromkeys(("tangerine", "tangelo"), Color.orange),
    **dict.fromkeys(("lemon", "canary", "sunflower", "mustard"), Color.yellow),
    **dict.fromkeys(
        ("violet", "plum", "lavender", "amethyst", "eggplant", "aubergine", "magenta"),
        Color.purple,
    ),
}
# Basic color names glued to another word: "Redfire", "Silverstone", "Deepblue". Only
# names of four letters or more may end a word ("colored" is not red).
_GLUED_COLORS = tuple(sorted(_BASIC_COLORS, key=len, reverse=True))


def color_family(raw: str | None) -> Color | None:
    """The family of a color name; `other` when a name is given but not recognised.

    A basic color word wins over a marketing word ("Platinum White Pearl" is white), and
    the first color named wins ("Newport Blue Pearl/Quartz Silver Metallic" is blue).
    """
    words = _words(raw or "")
    if _says_nothing(words):
        return None
    for lookup in (_BASIC_COLORS, _COLOR_KEYWORDS):
        for word in words:
            if word in lookup:
                return lookup[word]
    for word in words:
        for name in _GLUED_COLORS:
            if word.startswith(name) or (len(name) >= 4 and word.endswith(name)):
                return _BASIC_COLORS[name]
    return Color.other


# Listings


@dataclass(frozen=True, slots=True, kw_only=True)
class NormalizedListing:
    """A scraped listing in our vocabulary, ready to be stored.

    `make` and `model` are the catalog's names, or the cleaned raw names when the catalog
    does not know them (`unknown_make`, `unknown_model`). Colors are kept both as a family
    and as the name the page gave.
    """

    source: str
    source_listing_id: str
    url: str
    vin: str
    year: int
    make: str
    model: str
    trim: str | None
    condition: Condition
    price: int | None
    msrp: int | None
    price_drop: bool
    mileage: int | None
    body_style: BodyStyle | None
    drivetrain: Drivetrain | None
    fuel_type: FuelType | None
    transmission: Transmission | None
    engine: str | None
    exterior_color: Color | None
    exterior_color_name: str | None
    interior_color: Color | None
    interior_color_name: str | None
    mpg_city: int | None
    mpg_highway: int | None
    images: tuple[str, ...]
    features: tuple[str, ...]
    description: str | None
    dealer: ScrapedDealer | None
    private_seller: bool
    unknown_make: bool
    unknown_model: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    """A scraped listing that must not be stored, and why; `detail` is for people."""

    source_listing_id: str
    url: str
    reason: RejectReason
    detail: str | None = None


class _Reject(Exception):
    def __init__(self, reason: RejectReason, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason: RejectReason = reason
        self.detail = detail


def normalize_listing(
    raw: ScrapedListing, catalog: Catalog, *, current_year: int | None = None
) -> NormalizedListing | Rejected:
    """`raw` in canonical values, or the reason it cannot be stored.

    `current_year` (default: today's) bounds the model year at `current_year + 1`.
    """
    try:
        return _normalize(raw, catalog, current_year or date.today().year)
    except _Reject as rejection:
        return Rejected(raw.source_listing_id, raw.url, rejection.reason, rejection.detail)


def _normalize(raw: ScrapedListing, catalog: Catalog, current_year: int) -> NormalizedListing:
    vin = _vin(raw.vin)
    year = _year(raw.year, vin, current_year)
    raw_make = clean_text(raw.make)
    if raw_make is None:
        raise _Reject("missing_make")
    if len(raw_make) > MAX_MAKE_LENGTH:
        raise _Reject("make_too_long", raw_make)
    raw_model = clean_text(raw.model)
    if raw_model is None:
        raise _Reject("missing_model")
    make = catalog.canonical_make(raw_make)
    model = catalog.canonical_model(make, raw_model) if make is not None else None
    if model is None and len(raw_model) > MAX_MODEL_LENGTH:
        raise _Reject("model_too_long", raw_model)
    if raw.condition is None:
        raise _Reject("missing_condition")
    if raw.price is not None and not MIN_PLAUSIBLE_PRICE <= raw.price <= MAX_PLAUSIBLE_PRICE:
        raise _Reject("implausible_price", f"${raw.price:,}")
    if raw.mileage is not None and not 0 <= raw.mileage <= MAX_PLAUSIBLE_MILEAGE:
        raise _Reject("implausible_mileage", f"{raw.mileage:,} mi")

    style = body_style(raw.body_style)
    if (
        style is BodyStyle.van
        and make is not None
        and model is not None
        and catalog.reference_body_style(make, model) is BodyStyle.minivan
    ):
        style = BodyStyle.minivan
    exterior_name = clean_text(raw.exterior_color)
    interior_name = clean_text(raw.interior_color)
    return NormalizedListing(
        source=raw.source,
        source_listing_id=raw.source_listing_id,
        url=raw.url,
        vin=vin,
        year=year,
        make=make or raw_make,
        model=model or raw_model,
        trim=_bounded(clean_text(raw.trim), MAX_TRIM_LENGTH),
        condition=Condition(raw.condition),
        price=raw.price,
        # A wrong MSRP or MPG is not worth losing the listing over.
        msrp=raw.msrp
        if raw.msrp is not None and MIN_PLAUSIBLE_PRICE <= raw.msrp <= MAX_PLAUSIBLE_PRICE
        else None,
        price_drop=raw.price_drop,
        mileage=raw.mileage,
        body_style=style,
        drivetrain=drivetrain(raw.drivetrain),
        fuel_type=fuel_type(raw.fuel_type),
        transmission=transmission(raw.transmission),
        engine=_bounded(clean_text(raw.engine), MAX_ENGINE_LENGTH),
        exterior_color=color_family(exterior_name),
        exterior_color_name=exterior_name,
        interior_color=color_family(interior_name),
        interior_color_name=interior_name,
        mpg_city=_mpg(raw.mpg_city),
        mpg_highway=_mpg(raw.mpg_highway),
        images=raw.images,
        features=raw.features,
        description=_description(raw.description),
        dealer=raw.dealer,
        private_seller=raw.private_seller,
        unknown_make=make is None,
        unknown_model=model is None,
    )


def _vin(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise _Reject("missing_vin")
    vin = normalize_vin(raw)
    if not is_valid_vin(vin):
        raise _Reject("invalid_vin", vin)
    return vin


def _year(raw: int | None, vin: str, current_year: int) -> int:
    from_vin = model_year(vin)
    if raw is None:
        if from_vin is None:
            raise _Reject("missing_year")
        year = from_vin
    else:
        year = raw
        # A year that contradicts a valid VIN means the VIN may belong to another car,
        # and the VIN is what price history is keyed by.
        if from_vin is not None and (year - from_vin) % _VIN_YEAR_CYCLE != 0:
            raise _Reject("year_vin_mismatch", f"listing says {year}, VIN says {from_vin}")
    if not MIN_MODEL_YEAR <= year <= current_year + 1:
        raise _Reject("bad_year", str(year))
    return year


def _mpg(value: int | None) -> int | None:
    return value if value is not None and 0 < value <= MAX_PLAUSIBLE_MPG else None


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


def _bounded(value: str | None, limit: int) -> str | None:
    return value[:limit].rstrip() if value is not None else None
