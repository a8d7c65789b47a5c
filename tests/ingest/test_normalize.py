"""Normalizing scraped values: vocabulary mappers, catalog matching, whole listings.

The real strings come from the recorded cars.com pages (src/carsearch/ingest/demo_pages),
run through our parsers; the variants are the common spellings of other sites and dealers.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import get_args

import pytest
from recordings import CARSCOM_PAGES

from carsearch.ingest.carscom import CarsComPageError, parse_any
from carsearch.ingest.normalize import (
    Catalog,
    NormalizedListing,
    Rejected,
    RejectReason,
    body_style,
    color_family,
    drivetrain,
    fuel_type,
    normalize_listing,
    transmission,
)
from carsearch.ingest.records import ScrapedListing, SearchResultsPage
from carsearch.listings.vin import with_check_digit
from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    Drivetrain,
    FuelType,
    Transmission,
)

FIXTURES = CARSCOM_PAGES
SRP_2025 = "srp_2025-09_used_19102.html"
SRP_2026 = "srp_2026-05.html"
CARD_2026 = "srp_card_2026-05_price_drop.html"
VDP_2026 = "vdp_2026-05_dealer_used.html"
VDP_2025_PRIVATE = "vdp_2025-08_private_seller.html"
# The fixtures were recorded up to 2026; a fixed year keeps the year bound stable.
CURRENT_YEAR = 2026


@cache
def fixture_pages() -> dict[str, tuple[ScrapedListing, ...]]:
    """Listings of every fixture page that holds any, by file name."""
    pages: dict[str, tuple[ScrapedListing, ...]] = {}
    for page in sorted(FIXTURES.glob("*.html")):
        try:
            parsed = parse_any(page.read_text(encoding="utf-8"))
        except CarsComPageError:
            continue  # the challenge and "not found" pages hold no listing
        pages[page.name] = parsed.listings if isinstance(parsed, SearchResultsPage) else (parsed,)
    return pages


def fixture_listings() -> list[ScrapedListing]:
    return [listing for listings in fixture_pages().values() for listing in listings]


def fixture_listing(page: str, listing_id_prefix: str) -> ScrapedListing:
    (listing,) = [
        x for x in fixture_pages()[page] if x.source_listing_id.startswith(listing_id_prefix)
    ]
    return listing


def normalized(raw: ScrapedListing) -> NormalizedListing:
    result = normalize_listing(raw, Catalog.from_packaged(), current_year=CURRENT_YEAR)
    assert isinstance(result, NormalizedListing), result
    return result


def rejected(raw: ScrapedListing) -> Rejected:
    result = normalize_listing(raw, Catalog.from_packaged(), current_year=CURRENT_YEAR)
    assert isinstance(result, Rejected), result
    return result


# Vocabulary mappers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # On the fixture pages
        ("Sedan", BodyStyle.sedan),
        ("SUV", BodyStyle.suv),
        ("Hatchback", BodyStyle.hatchback),
        ("Coupe", BodyStyle.coupe),
        ("Convertible", BodyStyle.convertible),
        ("Wagon", BodyStyle.wagon),
        ("Minivan", BodyStyle.minivan),
        ("Passenger Van", BodyStyle.van),
        # Variants
        ("sedan", BodyStyle.sedan),
        ("4dr Sedan", BodyStyle.sedan),
        ("Sport Utility", BodyStyle.suv),
        ("Sport Utility Vehicle", BodyStyle.suv),
        ("Crossover", BodyStyle.suv),
        ("Pickup Truck", BodyStyle.pickup),
        ("Crew Cab Pickup", BodyStyle.pickup),
        ("Regular Cab", BodyStyle.pickup),
        ("SuperCrew", BodyStyle.pickup),
        ("Truck", BodyStyle.pickup),
        ("Hatch", BodyStyle.hatchback),
        ("Sportback", BodyStyle.hatchback),
        ("Coupé", BodyStyle.coupe),
        ("Cabriolet", BodyStyle.convertible),
        ("Convertible Coupe", BodyStyle.convertible),
        ("Roadster", BodyStyle.convertible),
        ("Sport Wagon", BodyStyle.wagon),
        ("Mini-van", BodyStyle.minivan),
        ("Cargo Van", BodyStyle.van),
        ("Van", BodyStyle.van),
        (None, None),
        ("", None),
        ("Chassis", None),
        ("Unknown", None),
    ],
)
def test_body_style(raw: str | None, expected: BodyStyle | None) -> None:
    assert body_style(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Front-wheel Drive", Drivetrain.fwd),
        ("All-wheel Drive", Drivetrain.awd),
        ("Four-wheel Drive", Drivetrain.four_wd),
        ("Rear-wheel Drive", Drivetrain.rwd),
        ("AWD", Drivetrain.awd),
        ("all wheel drive", Drivetrain.awd),
        ("4MATIC", Drivetrain.awd),
        ("xDrive", Drivetrain.awd),
        ("quattro", Drivetrain.awd),
        ("4WD", Drivetrain.four_wd),
        ("4x4", Drivetrain.four_wd),
        ("4 Wheel Drive", Drivetrain.four_wd),
        ("FWD", Drivetrain.fwd),
        ("Front Wheel Drive", Drivetrain.fwd),
        ("RWD", Drivetrain.rwd),
        ("rear wheel drive", Drivetrain.rwd),
        ("2WD", None),
        ("4x2", None),
        ("", None),
        (None, None),
    ],
)
def test_drivetrain(raw: str | None, expected: Drivetrain | None) -> None:
    assert drivetrain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Gasoline", FuelType.gasoline),
        ("E85 Flex Fuel", FuelType.flex_fuel),
        ("Hybrid", FuelType.hybrid),
        ("Gas", FuelType.gasoline),
        ("Premium Unleaded", FuelType.gasoline),
        ("Regular Unleaded", FuelType.gasoline),
        ("Gasoline Fuel", FuelType.gasoline),
        ("Diesel", FuelType.diesel),
        ("Diesel Fuel", FuelType.diesel),
        ("Gasoline/Mild Electric Hybrid", FuelType.hybrid),
        ("Gas/Electric", FuelType.hybrid),
        ("Plug-In Hybrid", FuelType.plug_in_hybrid),
        ("PHEV", FuelType.plug_in_hybrid),
        ("Electric", FuelType.electric),
        ("EV", FuelType.electric),
        ("Flexible Fuel", FuelType.flex_fuel),
        ("Gasoline / E85", FuelType.flex_fuel),
        ("Hydrogen Fuel Cell", None),
        ("Compressed Natural Gas", None),
        ("", None),
        (None, None),
    ],
)
def test_fuel_type(raw: str | None, expected: FuelType | None) -> None:
    assert fuel_type(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Automatic CVT", Transmission.cvt),
        ("7-Speed A/T", Transmission.automatic),
        ("8-Speed Automatic", Transmission.automatic),
        ("CVT", Transmission.cvt),
        ("Variable", Transmission.cvt),
        ("Continuously Variable Transmission", Transmission.cvt),
        ("6-Speed Manual", Transmission.manual),
        ("Manual", Transmission.manual),
        ("6-Speed M/T", Transmission.manual),
        ("Automatic", Transmission.automatic),
        ("Dual-clutch (A)", Transmission.automatic),
        ("7-Speed Automated Manual", Transmission.automatic),
        ("6-Speed Automatic with Manual Mode", Transmission.automatic),
        ("1-Speed", Transmission.automatic),
        ("", None),
        (None, None),
    ],
)
def test_transmission(raw: str | None, expected: Transmission | None) -> None:
    assert transmission(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # On the fixture pages
        ("Classic Silver Metallic", Color.silver),
        ("Dark Charcoal", Color.gray),
        ("Oyster Gray Metallic", Color.gray),
        ("Soft Beige", Color.beige),
        ("Newport Blue Pearl/Quartz Silver Metallic", Color.blue),
        ("Wicked Black", Color.black),
        ("Saharan Stone Metallic", Color.beige),
        ("Stone White Clearcoat", Color.white),
        ("Dark Slate Gray", Color.gray),
        ("Cocoa", Color.brown),
        ("Black Tricot", Color.black),
        ("Steel/Graphite", Color.gray),
        ("TAN", Color.beige),
        ("Silverstone Metallic", Color.silver),
        ("Titanium", Color.gray),
        ("Redfire Clearcoat Metallic", Color.red),
        ("Midnight Black Mica", Color.black),
        ("Paprika Red", Color.red),
        ("Medium Light Stone", Color.beige),
        ("Camel", Color.beige),
        ("BLACK", Color.black),
        ("GRAY", Color.gray),
        ("Purple", Color.purple),
        ("Gold", Color.gold),
        # Marketing names
        ("Crystal Black Pearl", Color.black),
        ("Lunar Silver Metallic", Color.silver),
        ("Modern Steel Metallic", Color.gray),
        ("Platinum White Pearl", Color.white),
        ("Sonic Gray Pearl", Color.gray),
        ("Radiant Red", Color.red),
        ("Aegean Blue", Color.blue),
        ("Ebony", Color.black),
        ("Ivory", Color.beige),
        ("Cream", Color.beige),
        ("Tan", Color.beige),
        ("Charcoal", Color.gray),
        ("Graphite", Color.gray),
        ("Burgundy", Color.red),
        ("Maroon", Color.red),
        ("Navy", Color.blue),
        ("Grey", Color.gray),
        ("Emerald", Color.green),
        ("Bronze", Color.brown),
        ("Champagne", Color.gold),
        # Unknown names are "other"; no name at all is None.
        ("Multicolored", Color.other),
        ("Other", Color.other),
        ("Zanzibar", Color.other),
        ("Unknown", None),
        ("N/A", None),
        ("  ", None),
        ("", None),
        (None, None),
    ],
)
def test_color_family(raw: str | None, expected: Color | None) -> None:
    assert color_family(raw) == expected


def test_every_fixture_string_maps() -> None:
    listings = fixture_listings()

    for listing in listings:
        assert listing.body_style is None or body_style(listing.body_style) is not None
        assert listing.drivetrain is None or drivetrain(listing.drivetrain) is not None
        assert listing.fuel_type is None or fuel_type(listing.fuel_type) is not None
        assert listing.transmission is None or transmission(listing.transmission) is not None
        for color in (listing.exterior_color, listing.interior_color):
            assert color is None or color_family(color) not in (None, Color.other), color


# Catalog


def small_catalog() -> Catalog:
    return Catalog.from_reference(
        [
            ("Mercedes-Benz", ["C-Class", "GLE"]),
            ("Ford", ["F-150", "F-150 Lightning", "Bronco", "Bronco Sport"]),
            ("Honda", ["CR-V", "Civic"]),
            ("Chevrolet", ["Silverado 1500", "Silverado 2500HD"]),
            ("Land Rover", ["Range Rover", "Range Rover Sport"]),
        ],
        make_aliases={"Honda": ["hondo"]},
        model_aliases={("Honda", "Civic"): ["civic si"], ("Ford", "F-150"): ["raptor"]},
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mercedes-Benz", "Mercedes-Benz"),
        ("mercedes benz", "Mercedes-Benz"),
        ("MERCEDES-BENZ", "Mercedes-Benz"),
        ("Mercedes", "Mercedes-Benz"),
        ("  ford ", "Ford"),
        ("Chevy", "Chevrolet"),
        ("Land Rover", "Land Rover"),
        ("Landrover", "Land Rover"),
        ("LAND-ROVER", "Land Rover"),
        ("hondo", "Honda"),
        # Common aliases apply only to makes in the catalog.
        ("VW", None),
        ("Alfa", None),
        ("Toyota", None),
        ("", None),
        (None, None),
    ],
)
def test_catalog_make(raw: str | None, expected: str | None) -> None:
    assert small_catalog().canonical_make(raw) == expected


@pytest.mark.parametrize(
    ("make", "raw", "expected"),
    [
        ("Ford", "F-150", "F-150"),
        ("Ford", "F150", "F-150"),
        ("ford", "f 150", "F-150"),
        ("Ford", "F-150 Lightning", "F-150 Lightning"),
        ("Ford", "F150 Lightning Lariat", "F-150 Lightning"),
        ("Ford", "Raptor", "F-150"),
        ("Ford", "Bronco Sport Badlands", "Bronco Sport"),
        ("Ford", "Bronco Wildtrak", "Bronco"),
        ("Honda", "CRV", "CR-V"),
        ("Honda", "cr-v", "CR-V"),
        ("Honda", "Civic Hybrid", "Civic"),
        ("Honda", "Civic Si", "Civic"),
        ("Chevy", "Silverado 1500", "Silverado 1500"),
        ("Chevrolet", "Silverado 1500 LT Crew Cab", "Silverado 1500"),
        ("Mercedes", "C Class", "C-Class"),
        ("Mercedes-Benz", "Mercedes-Benz GLE 350", "GLE"),
        ("Land Rover", "Range Rover Sport HSE", "Range Rover Sport"),
        ("Land Rover", "Land Rover Range Rover", "Range Rover"),
        # Unknown: no such model, a model of another make, an unknown make.
        ("Chevrolet", "Silverado", None),
        ("Honda", "Accord", None),
        ("Honda", "F-150", None),
        ("Toyota", "Camry", None),
        ("Honda", "", None),
        (None, "Civic", None),
    ],
)
def test_catalog_model(make: str | None, raw: str, expected: str | None) -> None:
    assert small_catalog().canonical_model(make, raw) == expected


def test_catalog_name_wins_over_alias_and_shared_aliases_are_dropped() -> None:
    catalog = Catalog.from_reference(
        [("Ford", ["Transit", "Transit Connect", "Connect"])],
        model_aliases={
            ("Ford", "Transit"): ["connect", "van"],
            ("Ford", "Transit Connect"): ["van"],
        },
    )

    assert catalog.canonical_model("Ford", "Connect") == "Connect"
    assert catalog.canonical_model("Ford", "Van") is None


@pytest.mark.parametrize(
    ("make", "model", "expected"),
    [
        ("VW", "Jetta", ("Volkswagen", "Jetta")),
        ("Chevy", "Silverado 1500", ("Chevrolet", "Silverado 1500")),
        ("Alfa", "Giulia", ("Alfa Romeo", "Giulia")),
        ("Landrover", "Range Rover Velar", ("Land Rover", "Range Rover Velar")),
        ("MERCEDES-BENZ", "C300", ("Mercedes-Benz", "C-Class")),
        ("Mazda", "CX5", ("Mazda", "CX-5")),
        ("Ram", "1500 Classic Tradesman", ("Ram", "1500 Classic")),
        ("Volkswagen", "ID.4", ("Volkswagen", "ID.4")),
        ("Lamborghini", "Huracán EVO", ("Lamborghini", "Huracan")),
    ],
)
def test_packaged_catalog(make: str, model: str, expected: tuple[str, str]) -> None:
    catalog = Catalog.from_packaged()

    canonical_make = catalog.canonical_make(make)
    assert (canonical_make, catalog.canonical_model(canonical_make, model)) == expected


def test_packaged_catalog_knows_reference_body_styles() -> None:
    catalog = Catalog.from_packaged()

    assert "Mercedes-Benz" in catalog.makes
    assert catalog.reference_body_style("Nissan", "Quest") is BodyStyle.minivan
    assert catalog.reference_body_style("Nissan", "Nope") is None


# Whole listings from the fixture pages


def test_every_fixture_listing_normalizes() -> None:
    listings = fixture_listings()
    catalog = Catalog.from_packaged()

    assert len(listings) == 80
    results = [normalize_listing(x, catalog, current_year=CURRENT_YEAR) for x in listings]
    for listing, result in zip(listings, results, strict=True):
        if isinstance(result, Rejected):
            assert result.reason in get_args(RejectReason)
            assert result.source_listing_id == listing.source_listing_id
        else:
            assert result.vin == listing.vin
            assert result.source_listing_id == listing.source_listing_id
    # Every recorded listing is a real car with a valid VIN and a plausible price.
    assert all(isinstance(r, NormalizedListing) for r in results)
    unknown = [
        (r.make, r.model)
        for r in results
        if isinstance(r, NormalizedListing) and (r.unknown_make or r.unknown_model)
    ]
    # cars.com names the 2007 BMW 525xi "525", which the reference data files under 5 Series.
    assert unknown == [("BMW", "525")]


def test_detail_page_dealer_listing_field_by_field() -> None:
    raw = fixture_listing(VDP_2026, "3715142b")
    listing = normalized(raw)

    assert listing.vin == "19XFC2F69LE000132"
    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2020,
        "Honda",
        "Civic",
        "LX",
    )
    assert listing.condition is Condition.used
    assert (listing.price, listing.mileage, listing.msrp) == (20997, 76939, None)
    assert listing.body_style is BodyStyle.sedan
    assert listing.drivetrain is Drivetrain.fwd
    assert listing.fuel_type is FuelType.gasoline
    assert listing.transmission is Transmission.cvt
    assert listing.engine == "2.0L I4 16V MPFI DOHC"
    assert (listing.exterior_color, listing.exterior_color_name) == (Color.silver, "Silver")
    assert (listing.interior_color, listing.interior_color_name) == (Color.black, "Black")
    assert (listing.mpg_city, listing.mpg_highway) == (30, 38)
    assert listing.features == raw.features
    assert listing.images == raw.images
    assert listing.dealer is not None
    assert listing.dealer.name == "F H Dailey Chevrolet"
    assert listing.private_seller is False
    assert listing.source == "carscom"
    assert listing.url == raw.url
    assert (listing.unknown_make, listing.unknown_model) == (False, False)


def test_private_seller_detail_page() -> None:
    listing = normalized(fixture_listing(VDP_2025_PRIVATE, "f36525be"))

    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2010,
        "Porsche",
        "Cayman",
        "S",
    )
    assert listing.transmission is Transmission.automatic
    assert listing.drivetrain is Drivetrain.rwd
    assert listing.body_style is BodyStyle.coupe
    assert listing.exterior_color is Color.gray
    assert listing.private_seller is True
    assert listing.dealer is None


@pytest.mark.parametrize(
    ("page", "listing_id", "make", "model", "check"),
    [
        # "FIAT" and "SONATA" are upper-case on the page.
        (SRP_2025, "8d1ca7c7", "Fiat", "500", {"exterior_color": Color.brown}),
        (SRP_2025, "15ff60e9", "Hyundai", "Sonata", {"exterior_color": Color.beige}),
        # cars.com says "Passenger Van"; the reference data knows these are minivans.
        (SRP_2025, "e92367cd", "Chrysler", "Town & Country", {"body_style": BodyStyle.minivan}),
        (SRP_2025, "f71b04f6", "Nissan", "Quest", {"body_style": BodyStyle.minivan}),
        # "ES 330" and "Civic Hybrid": a known model followed by a word it does not know.
        (SRP_2025, "5f64da67", "Lexus", "ES", {"trim": "Base"}),
        (SRP_2025, "256e6163", "Honda", "Civic", {"fuel_type": FuelType.hybrid}),
        (SRP_2025, "cf477d29", "Chevrolet", "Impala", {"fuel_type": FuelType.flex_fuel}),
        (SRP_2025, "664e79fd", "Mercury", "Mariner", {"drivetrain": Drivetrain.four_wd}),
        (SRP_2025, "e2be737b", "Chevrolet", "Malibu", {"msrp": 6295, "price_drop": True}),
        (SRP_2026, "bffbd083", "Honda", "Civic", {"condition": Condition.cpo}),
        (
            CARD_2026,
            "45019c6a",
            "Honda",
            "CR-V",
            {"drivetrain": Drivetrain.awd, "price_drop": True, "trim": "AWD Touring"},
        ),
    ],
)
def test_fixture_listings_field_by_field(
    page: str, listing_id: str, make: str, model: str, check: dict[str, object]
) -> None:
    listing = normalized(fixture_listing(page, listing_id))

    assert (listing.make, listing.model) == (make, model)
    assert {name: getattr(listing, name) for name in check} == check


# Rejections


def base_listing() -> ScrapedListing:
    return fixture_listing(VDP_2026, "3715142b")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"vin": None}, "missing_vin"),
        ({"vin": "   "}, "missing_vin"),
        ({"vin": "19XFC2F68LE000132"}, "invalid_vin"),  # check digit 9 expected, 8 given
        ({"vin": "19XFC2F69LE00013"}, "invalid_vin"),  # 16 characters
        ({"vin": "19XFC2F69LE00O132"}, "invalid_vin"),  # the letter O
        ({"make": None}, "missing_make"),
        ({"make": " "}, "missing_make"),
        ({"make": "X" * 65}, "make_too_long"),
        ({"model": None}, "missing_model"),
        ({"model": "Civic-but-not-quite " * 4}, "model_too_long"),
        ({"condition": None}, "missing_condition"),
        ({"price": 1}, "implausible_price"),
        ({"price": 499}, "implausible_price"),
        ({"price": 5_000_001}, "implausible_price"),
        ({"mileage": -1}, "implausible_mileage"),
        ({"mileage": 9_999_999}, "implausible_mileage"),
        ({"year": 2019}, "year_vin_mismatch"),
    ],
)
def test_rejection_reasons(change: dict[str, object], reason: str) -> None:
    raw = replace(base_listing(), **change)  # type: ignore[arg-type]

    result = rejected(raw)

    assert result.reason == reason
    assert (result.source_listing_id, result.url) == (raw.source_listing_id, raw.url)


def test_rejected_price_says_what_it_was() -> None:
    result = rejected(replace(base_listing(), price=1))

    assert (result.reason, result.detail) == ("implausible_price", "$1")


def test_year_out_of_range_is_bad_year() -> None:
    # Year code A with a digit in position 7 is 1980, the year before 17-character VINs.
    vin_1980 = with_check_digit("1HGFA165XAL047731")
    raw = replace(base_listing(), vin=vin_1980, year=1980)

    assert rejected(raw).reason == "bad_year"
    future = normalize_listing(base_listing(), Catalog.from_packaged(), current_year=2018)
    assert isinstance(future, Rejected)
    assert future.reason == "bad_year"


def test_year_comes_from_the_vin_when_the_page_has_none() -> None:
    listing = normalized(replace(base_listing(), year=None))

    assert listing.year == 2020


def test_year_thirty_years_from_the_vin_year_is_the_vin_cycle_not_a_mismatch() -> None:
    # Position 7 is a letter, so model_year reads 2020; the same code also means 1990.
    assert normalized(replace(base_listing(), year=1990)).year == 1990


def test_accepted_edges_and_cleanups() -> None:
    raw = replace(
        base_listing(),
        vin=" 19xfc2f69le000132 ",
        make=" HONDA ",
        model="civic   hybrid",
        price=None,
        mileage=0,
        msrp=1,
        mpg_city=0,
        exterior_color="  ",
        trim="  ",
        description="  ",
    )

    listing = normalized(raw)

    assert listing.vin == "19XFC2F69LE000132"
    assert (listing.make, listing.model) == ("Honda", "Civic")
    assert (listing.price, listing.mileage, listing.msrp, listing.mpg_city) == (None, 0, None, None)
    assert (listing.exterior_color, listing.exterior_color_name) == (None, None)
    assert (listing.trim, listing.description) == (None, None)


def test_unknown_make_and_model_keep_the_cleaned_raw_names() -> None:
    listing = normalized(replace(base_listing(), make="  Vinfast ", model=" VF  8 "))

    assert (listing.make, listing.model) == ("Vinfast", "VF 8")
    assert (listing.unknown_make, listing.unknown_model) == (True, True)

    listing = normalized(replace(base_listing(), model="Prelude"))
    assert (listing.make, listing.model) == ("Honda", "Prelude")
    assert (listing.unknown_make, listing.unknown_model) == (False, True)
