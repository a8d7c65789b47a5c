"""Plain words to search filters: phrasings, misspellings, follow-ups, preferences, and
text that must never raise. Pure: the packaged catalog and ZIP data, no database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carsearch.chat.understand import (
    CHEAP_PRICE_MAX,
    FUZZY_EXCLUDED,
    LOW_MILEAGE_MAX,
    MAX_MESSAGE_CHARS,
    Understanding,
    understand,
)
from carsearch.ingest.normalize import Catalog
from carsearch.search.schemas import SearchFilters, SearchParams, SortOrder

THIS_YEAR = 2026


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.from_packaged()


def read(
    catalog: Catalog,
    message: str,
    previous: SearchFilters | None = None,
    preferences: dict[str, Any] | None = None,
) -> Understanding:
    return understand(
        message,
        catalog,
        previous=previous,
        preferences=preferences,
        current_year=THIS_YEAR,
    )


TOYOTA_CAMRY = {"make": ["Toyota"], "model": ["Camry"]}
HONDA_CIVIC = {"make": ["Honda"], "model": ["Civic"]}

NAMES = [
    ("toyota", {"make": ["Toyota"]}),
    ("Toyota Camry", TOYOTA_CAMRY),
    ("TOYOTA CAMRY", TOYOTA_CAMRY),
    ("toyta camry", TOYOTA_CAMRY),
    ("toyota camery", TOYOTA_CAMRY),
    ("toyoat camry", TOYOTA_CAMRY),
    ("camry", TOYOTA_CAMRY),
    ("camrys", TOYOTA_CAMRY),
    ("hona civic", HONDA_CIVIC),
    ("hodna civic", HONDA_CIVIC),
    ("civics", HONDA_CIVIC),
    ("hondas", {"make": ["Honda"]}),
    ("TOYOTAS", {"make": ["Toyota"]}),
    ("chevy silverado", {"make": ["Chevrolet"], "model": ["Silverado 1500"]}),
    ("chevrolet silverdo", {"make": ["Chevrolet"], "model": ["Silverado 1500"]}),
    ("mercedes", {"make": ["Mercedes-Benz"]}),
    ("Mercedes-Benz", {"make": ["Mercedes-Benz"]}),
    ("mercedez benz", {"make": ["Mercedes-Benz"]}),
    ("vw", {"make": ["Volkswagen"]}),
    ("volkswagon jeta", {"make": ["Volkswagen"], "model": ["Jetta"]}),
    ("f150", {"make": ["Ford"], "model": ["F-150"]}),
    ("F-150", {"make": ["Ford"], "model": ["F-150"]}),
    ("f 150 lightning", {"make": ["Ford"], "model": ["F-150 Lightning"]}),
    ("crv", {"make": ["Honda"], "model": ["CR-V"]}),
    ("CR-V", {"make": ["Honda"], "model": ["CR-V"]}),
    ("rav 4", {"make": ["Toyota"], "model": ["RAV4"]}),
    ("rav4s", {"make": ["Toyota"], "model": ["RAV4"]}),
    ("mustang", {"make": ["Ford"], "model": ["Mustang"]}),
    ("subaru outbak", {"make": ["Subaru"], "model": ["Outback"]}),
    ("porshe cayene", {"make": ["Porsche"], "model": ["Cayenne"]}),
    ("land rovr", {"make": ["Land Rover"]}),
    ("nisan", {"make": ["Nissan"]}),
    ("lexus is", {"make": ["Lexus"], "model": ["IS"]}),
    ("is the lexus rx any good", {"make": ["Lexus"], "model": ["RX"]}),
    ("honda fit", {"make": ["Honda"], "model": ["Fit"]}),
    ("tesla model 3", {"make": ["Tesla"], "model": ["Model 3"]}),
    ("model y", {"make": ["Tesla"], "model": ["Model Y"]}),
    ("mazda 3", {"make": ["Mazda"], "model": ["Mazda3"]}),
    ("bmw 3 series", {"make": ["BMW"], "model": ["3 Series"]}),
    ("x5", {"make": ["BMW"], "model": ["X5"]}),
    ("porsche 911", {"make": ["Porsche"], "model": ["911"]}),
    ("dodge ram 1500", {"make": ["Ram"], "model": ["1500"]}),
    ("grand cherokee", {"make": ["Jeep"], "model": ["Grand Cherokee"]}),
    ("toyota or honda", {"make": ["Honda", "Toyota"]}),
    ("camry or accord", {"make": ["Honda", "Toyota"], "model": ["Accord", "Camry"]}),
    # Two makes build a Sprinter: the model alone names neither.
    ("sprinter", {"model": ["Sprinter"]}),
    ("kona electric", {"make": ["Hyundai"], "model": ["Kona Electric"]}),
    ("camry hybrid", {**TOYOTA_CAMRY, "fuel_type": ["hybrid"]}),
    ("civic hatchback", {**HONDA_CIVIC, "body_style": ["hatchback"]}),
    ("prius plug-in hybrid", {"make": ["Toyota"], "model": ["Prius Prime"]}),
]

NOT_NAMES = [
    ("quick car", {"q": "quick"}),
    ("keep it under 20k", {"price_max": 20000}),
    ("ford with good range", {"make": ["Ford"]}),
    ("tesla models", {"make": ["Tesla"]}),
    ("a smart design", {"q": "smart design"}),
    ("something fit for a family", {"q": "fit family"}),
    ("used cars in colorado", {"condition": ["used"], "q": "colorado"}),
    ("a car for two", {"q": "two"}),
    ("show me cars please", {}),
]

PRICES = [
    ("under 25k", {"price_max": 25000}),
    ("below $30,000", {"price_max": 30000}),
    ("less than 20000", {"price_max": 20000}),
    ("max 18k", {"price_max": 18000}),
    ("up to 22,500", {"price_max": 22500}),
    ("budget 25k", {"price_max": 25000}),
    ("budget of $25,000", {"price_max": 25000}),
    ("my budget is 18000 dollars", {"price_max": 18000}),
    ("25k budget", {"price_max": 25000}),
    ("18k or less", {"price_max": 18000}),
    ("under 20 grand", {"price_max": 20000}),
    ("cheaper than 20k", {"price_max": 20000}),
    ("under 25", {"price_max": 25000}),
    ("$20,000", {"price_max": 20000}),
    ("over 10k", {"price_min": 10000}),
    ("at least $15,000", {"price_min": 15000}),
    ("$15k+", {"price_min": 15000}),
    ("between 15k and 25k", {"price_min": 15000, "price_max": 25000}),
    ("15-25k", {"price_min": 15000, "price_max": 25000}),
    ("from 15k to 25k", {"price_min": 15000, "price_max": 25000}),
    ("$15,000-$25,000", {"price_min": 15000, "price_max": 25000}),
    ("15 to 25 thousand", {"price_min": 15000, "price_max": 25000}),
    ("around 20k", {"price_min": 18000, "price_max": 22000}),
    ("about $30,000", {"price_min": 27000, "price_max": 33000}),
    ("cheap", {"price_max": CHEAP_PRICE_MAX}),
    ("cheap under 15k", {"price_max": 15000}),
    ("suv with 7 seats under 30k", {"body_style": ["suv"], "price_max": 30000}),
    ("at least 7 seats", {}),
    ("electric with 300 miles of range", {"fuel_type": ["electric"]}),
]

MILEAGE = [
    ("less than 60,000 miles", {"mileage_max": 60000}),
    ("under 50k miles", {"mileage_max": 50000}),
    ("low miles", {"mileage_max": LOW_MILEAGE_MAX}),
    ("low mileage", {"mileage_max": LOW_MILEAGE_MAX}),
    ("under 30k mi", {"mileage_max": 30000}),
    ("100k miles or less", {"mileage_max": 100000}),
    ("mileage under 80k", {"mileage_max": 80000}),
    ("under 25k and under 60k miles", {"price_max": 25000, "mileage_max": 60000}),
]

YEARS = [
    ("2019 or newer", {"year_min": 2019}),
    ("newer than 2018", {"year_min": 2019}),
    ("2018+", {"year_min": 2018}),
    ("2019 and up", {"year_min": 2019}),
    ("after 2017", {"year_min": 2018}),
    ("from 2016", {"year_min": 2016}),
    ("since 2016", {"year_min": 2016}),
    ("2015-2019", {"year_min": 2015, "year_max": 2019}),
    ("2015 to 2019", {"year_min": 2015, "year_max": 2019}),
    ("between 2015 and 2019", {"year_min": 2015, "year_max": 2019}),
    ("2015-19", {"year_min": 2015, "year_max": 2019}),
    ("older than 2010", {"year_max": 2009}),
    ("before 2012", {"year_max": 2011}),
    ("2010 or older", {"year_max": 2010}),
    ("2020 civic", {**HONDA_CIVIC, "year_min": 2020, "year_max": 2020}),
    ("2018 or 2019", {"year_min": 2018, "year_max": 2019}),
]

WORDS = [
    ("suv", {"body_style": ["suv"]}),
    ("SUVs", {"body_style": ["suv"]}),
    ("crossovers", {"body_style": ["suv"]}),
    ("sedans", {"body_style": ["sedan"]}),
    ("truck", {"body_style": ["pickup"]}),
    ("pick-up trucks", {"body_style": ["pickup"]}),
    ("coupe", {"body_style": ["coupe"]}),
    ("convertibles", {"body_style": ["convertible"]}),
    ("hatchback", {"body_style": ["hatchback"]}),
    ("station wagon", {"body_style": ["wagon"]}),
    ("mini van", {"body_style": ["minivan"]}),
    ("minivans", {"body_style": ["minivan"]}),
    ("vans", {"body_style": ["van"]}),
    ("electric", {"fuel_type": ["electric"]}),
    ("evs", {"fuel_type": ["electric"]}),
    ("hybrid", {"fuel_type": ["hybrid"]}),
    ("plug-in hybrid", {"fuel_type": ["plug_in_hybrid"]}),
    ("phev", {"fuel_type": ["plug_in_hybrid"]}),
    ("diesel", {"fuel_type": ["diesel"]}),
    ("gas", {"fuel_type": ["gasoline"]}),
    ("gasoline", {"fuel_type": ["gasoline"]}),
    ("flex fuel", {"fuel_type": ["flex_fuel"]}),
    ("good gas mileage", {}),
    ("awd", {"drivetrain": ["awd"]}),
    ("all-wheel drive", {"drivetrain": ["awd"]}),
    ("4wd", {"drivetrain": ["4wd"]}),
    ("4x4", {"drivetrain": ["4wd"]}),
    ("four-wheel drive", {"drivetrain": ["4wd"]}),
    ("fwd", {"drivetrain": ["fwd"]}),
    ("front-wheel drive", {"drivetrain": ["fwd"]}),
    ("rwd", {"drivetrain": ["rwd"]}),
    ("rear wheel drive", {"drivetrain": ["rwd"]}),
    ("manual", {"transmission": ["manual"]}),
    ("stick shift", {"transmission": ["manual"]}),
    ("automatic", {"transmission": ["automatic"]}),
    ("cvt", {"transmission": ["cvt"]}),
    ("red", {"exterior_color": ["red"]}),
    ("in red", {"exterior_color": ["red"]}),
    ("grey", {"exterior_color": ["gray"]}),
    ("red or blue", {"exterior_color": ["blue", "red"]}),
    ("black interior", {"interior_color": ["black"]}),
    ("interior in tan", {"interior_color": ["beige"]}),
    ("white with tan leather", {"exterior_color": ["white"], "interior_color": ["beige"]}),
    ("black on black", {"exterior_color": ["black"], "interior_color": ["black"]}),
    ("red, black interior", {"exterior_color": ["red"], "interior_color": ["black"]}),
    ("new", {"condition": ["new"]}),
    ("brand new", {"condition": ["new"]}),
    ("used", {"condition": ["used"]}),
    ("pre-owned", {"condition": ["used"]}),
    ("certified", {"condition": ["cpo"]}),
    ("cpo", {"condition": ["cpo"]}),
    ("certified pre-owned", {"condition": ["cpo"]}),
    ("new or certified", {"condition": ["cpo", "new"]}),
    ("new york", {}),
]

PLACES = [
    ("near 10001", {"zip": "10001"}),
    ("in 94103", {"zip": "94103"}),
    ("zip 60601", {"zip": "60601"}),
    ("zip code 60601", {"zip": "60601"}),
    ("around 10001", {"zip": "10001"}),
    ("within 30 miles of 10001", {"zip": "10001", "radius": 30}),
    ("near 10001 within 25 miles", {"zip": "10001", "radius": 25}),
    ("25 miles from 94103", {"zip": "94103", "radius": 25}),
    ("30 mi", {"radius": 30}),
    ("75 mile radius", {"radius": 75}),
    ("within 1000 miles of 10001", {"zip": "10001", "radius": 500}),
]

COMBINATIONS = [
    (
        "awd honda crv under 30k near 10001",
        {
            "make": ["Honda"],
            "model": ["CR-V"],
            "drivetrain": ["awd"],
            "price_max": 30000,
            "zip": "10001",
        },
    ),
    (
        "used toyota camry hybrid 2018 or newer under 25k with less than 60k miles",
        {
            **TOYOTA_CAMRY,
            "fuel_type": ["hybrid"],
            "condition": ["used"],
            "year_min": 2018,
            "price_max": 25000,
            "mileage_max": 60000,
        },
    ),
    (
        "red convertible with sunroof",
        {"exterior_color": ["red"], "body_style": ["convertible"], "q": "sunroof"},
    ),
    (
        "certified pre-owned bmw x5 xdrive",
        {"make": ["BMW"], "model": ["X5"], "drivetrain": ["awd"], "condition": ["cpo"]},
    ),
    (
        "Black 4x4 Ford F-150, within 25 miles of 60601, under $40,000!",
        {
            "make": ["Ford"],
            "model": ["F-150"],
            "exterior_color": ["black"],
            "drivetrain": ["4wd"],
            "zip": "60601",
            "radius": 25,
            "price_max": 40000,
        },
    ),
    (
        "cheap used manual hatchback with low miles",
        {
            "price_max": CHEAP_PRICE_MAX,
            "condition": ["used"],
            "transmission": ["manual"],
            "body_style": ["hatchback"],
            "mileage_max": LOW_MILEAGE_MAX,
        },
    ),
    (
        "hybrid suv 2020-2023 between 25 and 35k near 94103",
        {
            "fuel_type": ["hybrid"],
            "body_style": ["suv"],
            "year_min": 2020,
            "year_max": 2023,
            "price_min": 25000,
            "price_max": 35000,
            "zip": "94103",
        },
    ),
    (
        "gray subaru forester or outback, 4wd, no older than 2017",
        {
            "make": ["Subaru"],
            "model": ["Forester", "Outback"],
            "exterior_color": ["gray"],
            "drivetrain": ["4wd"],
            "year_min": 2017,
        },
    ),
    (
        "looking for a white tesla model y with black interior under 45k",
        {
            "make": ["Tesla"],
            "model": ["Model Y"],
            "exterior_color": ["white"],
            "interior_color": ["black"],
            "price_max": 45000,
        },
    ),
]

DEALS = [
    ("good deals on a camry", {**TOYOTA_CAMRY, "deal_rating": ["good", "great"]}),
    ("great deal on a civic", {**HONDA_CIVIC, "deal_rating": ["great"]}),
    ("a toyota that's a steal", {"make": ["Toyota"], "deal_rating": ["great"]}),
    ("suv priced below market", {"body_style": ["suv"], "deal_rating": ["good", "great"]}),
    ("underpriced trucks", {"body_style": ["pickup"], "deal_rating": ["good", "great"]}),
]

ALL_PHRASINGS = NAMES + NOT_NAMES + PRICES + MILEAGE + YEARS + WORDS + PLACES + COMBINATIONS + DEALS


@pytest.mark.parametrize(("message", "expected"), ALL_PHRASINGS)
def test_a_phrasing_gives_exactly_these_filters(
    catalog: Catalog, message: str, expected: dict[str, Any]
) -> None:
    understood = read(catalog, message)
    assert understood.filters.normalized() == expected
    assert understood.follow_up is False
    assert understood.unknown_zip is None


def test_there_are_enough_phrasings() -> None:
    assert len(ALL_PHRASINGS) >= 60


@pytest.mark.parametrize(
    ("message", "recognized"),
    [
        ("toyota under 25k", ("make Toyota", "price under $25,000")),
        (
            "camry within 30 miles of 10001",
            ("make Toyota", "model Camry", "within 30 miles of 10001"),
        ),
        ("awd suv 2019 or newer", ("body style SUV", "drivetrain AWD", "year 2019 or newer")),
        ("good deals on a camry", ("make Toyota", "model Camry", "great or good deals")),
        ("15-25k under 60k miles", ("price $15,000 to $25,000", "under 60,000 miles")),
        ("red convertible with sunroof", ("body style convertible", "color red", 'text "sunroof"')),
        ("certified black interior", ("interior black", "condition certified pre-owned")),
        ("hello there", ()),
    ],
)
def test_recognized_phrases_name_what_was_understood(
    catalog: Catalog, message: str, recognized: tuple[str, ...]
) -> None:
    assert read(catalog, message).recognized == recognized


@pytest.mark.parametrize(
    "word",
    [
        "under",
        "miles",
        "newer",
        "cheap",
        "near",
        "quick",
        "keep",
        "from",
        "mind",
        "food",
        "range",
        "carry",
        "class",
        "start",
        "candy",
        "roles",
        "audio",
        "lodge",
        "flat",
        "model",
    ],
)
def test_common_words_never_become_a_make_or_model(catalog: Catalog, word: str) -> None:
    assert word in FUZZY_EXCLUDED
    for message in (word, f"{word} cars", f"toyota {word}", f"ford {word}", f"mini {word}"):
        filters = read(catalog, message).filters
        assert filters.model == [], message
        assert set(filters.make) <= {"Toyota", "Ford", "Mini"}, message


def test_a_zip_alone_searches_the_default_radius(catalog: Catalog) -> None:
    filters = read(catalog, "near 10001").filters
    assert (filters.zip, filters.radius) == ("10001", 50)


@pytest.mark.parametrize(
    ("message", "unknown"),
    [("near 99999", "99999"), ("in 00000", "00000"), ("zip 00001", "00001")],
)
def test_a_number_given_as_a_place_that_is_no_zip_is_reported(
    catalog: Catalog, message: str, unknown: str
) -> None:
    understood = read(catalog, message, preferences={"home_zip": "10001"})
    assert understood.unknown_zip == unknown
    # Not filled from the home ZIP either: the shopper asked for somewhere else.
    assert understood.filters.zip is None


def test_around_a_round_number_is_a_price_not_a_zip(catalog: Catalog) -> None:
    understood = read(catalog, "around 34000")
    assert understood.filters.zip is None
    assert (understood.filters.price_min, understood.filters.price_max) == (30600, 37400)


# Follow-ups: each step is (message, filters expected after it, follow_up)

Step = tuple[str, dict[str, Any], bool]

CONVERSATIONS: dict[str, list[Step]] = {
    "narrowing": [
        (
            "honda civic under 20k near 10001",
            {**HONDA_CIVIC, "price_max": 20000, "zip": "10001"},
            False,
        ),
        (
            "only AWD",
            {**HONDA_CIVIC, "price_max": 20000, "zip": "10001", "drivetrain": ["awd"]},
            True,
        ),
        (
            "cheaper",
            {**HONDA_CIVIC, "price_max": 18000, "zip": "10001", "drivetrain": ["awd"]},
            True,
        ),
        (
            "show newer ones",
            {
                **HONDA_CIVIC,
                "price_max": 18000,
                "zip": "10001",
                "drivetrain": ["awd"],
                "year_min": THIS_YEAR - 5,
            },
            True,
        ),
        (
            "newer",
            {
                **HONDA_CIVIC,
                "price_max": 18000,
                "zip": "10001",
                "drivetrain": ["awd"],
                "year_min": THIS_YEAR - 3,
            },
            True,
        ),
        (
            "lower miles",
            {
                **HONDA_CIVIC,
                "price_max": 18000,
                "zip": "10001",
                "drivetrain": ["awd"],
                "year_min": THIS_YEAR - 3,
                "mileage_max": 50000,
            },
            True,
        ),
        (
            "fewer miles",
            {
                **HONDA_CIVIC,
                "price_max": 18000,
                "zip": "10001",
                "drivetrain": ["awd"],
                "year_min": THIS_YEAR - 3,
                "mileage_max": 37500,
            },
            True,
        ),
    ],
    "switching makes": [
        (
            "awd suv under 30k",
            {"drivetrain": ["awd"], "body_style": ["suv"], "price_max": 30000},
            False,
        ),
        (
            "what about hondas",
            {"make": ["Honda"], "drivetrain": ["awd"], "body_style": ["suv"], "price_max": 30000},
            True,
        ),
        (
            "how about a crv",
            {
                "make": ["Honda"],
                "model": ["CR-V"],
                "drivetrain": ["awd"],
                "body_style": ["suv"],
                "price_max": 30000,
            },
            True,
        ),
        (
            "what about toyotas",
            {"make": ["Toyota"], "drivetrain": ["awd"], "body_style": ["suv"], "price_max": 30000},
            True,
        ),
        # A new make without a cue is a new search.
        ("ford mustang", {"make": ["Ford"], "model": ["Mustang"]}, False),
    ],
    "colors": [
        ("red sedan", {"exterior_color": ["red"], "body_style": ["sedan"]}, False),
        ("also in blue", {"exterior_color": ["blue", "red"], "body_style": ["sedan"]}, True),
        ("in white", {"exterior_color": ["white"], "body_style": ["sedan"]}, True),
        (
            "black interior too",
            {"exterior_color": ["white"], "interior_color": ["black"], "body_style": ["sedan"]},
            True,
        ),
        ("any color", {"body_style": ["sedan"]}, True),
    ],
    "clearing and starting over": [
        (
            "toyota camry 15-25k 2018+",
            {**TOYOTA_CAMRY, "price_min": 15000, "price_max": 25000, "year_min": 2018},
            False,
        ),
        ("forget the price", {**TOYOTA_CAMRY, "year_min": 2018}, True),
        ("under 20k", {**TOYOTA_CAMRY, "year_min": 2018, "price_max": 20000}, True),
        ("any price", {**TOYOTA_CAMRY, "year_min": 2018}, True),
        ("any year", TOYOTA_CAMRY, True),
        ("start over", {}, False),
        ("suv", {"body_style": ["suv"]}, False),
        ("new search: trucks under 40k", {"body_style": ["pickup"], "price_max": 40000}, False),
    ],
    "no previous reference": [
        ("suv", {"body_style": ["suv"]}, False),
        ("cheaper", {"body_style": ["suv"], "price_max": CHEAP_PRICE_MAX}, True),
        (
            "newer",
            {"body_style": ["suv"], "price_max": CHEAP_PRICE_MAX, "year_min": THIS_YEAR - 5},
            True,
        ),
        (
            "lower mileage",
            {
                "body_style": ["suv"],
                "price_max": CHEAP_PRICE_MAX,
                "year_min": THIS_YEAR - 5,
                "mileage_max": LOW_MILEAGE_MAX,
            },
            True,
        ),
    ],
    "contradicting bounds": [
        ("2020 camry", {**TOYOTA_CAMRY, "year_min": 2020, "year_max": 2020}, False),
        ("newer", {**TOYOTA_CAMRY, "year_min": 2022}, True),
        ("under 20k", {**TOYOTA_CAMRY, "year_min": 2022, "price_max": 20000}, True),
        ("over 30k", {**TOYOTA_CAMRY, "year_min": 2022, "price_min": 30000}, True),
    ],
    "places": [
        ("civic", HONDA_CIVIC, False),
        ("within 20 miles of 94103", {**HONDA_CIVIC, "zip": "94103", "radius": 20}, True),
        ("near 60601", {**HONDA_CIVIC, "zip": "60601", "radius": 20}, True),
        ("what about 10001", {**HONDA_CIVIC, "zip": "10001", "radius": 20}, True),
        ("near 99999", {**HONDA_CIVIC, "zip": "10001", "radius": 20}, True),
        ("anywhere, any location", HONDA_CIVIC, True),
    ],
}


@pytest.mark.parametrize("name", list(CONVERSATIONS))
def test_follow_ups_adjust_the_previous_filters(catalog: Catalog, name: str) -> None:
    previous: SearchFilters | None = None
    for message, expected, follow_up in CONVERSATIONS[name]:
        understood = read(catalog, message, previous)
        assert understood.filters.normalized() == expected, message
        assert understood.follow_up is follow_up, message
        previous = understood.filters


def test_cheaper_and_newer_say_what_they_did(catalog: Catalog) -> None:
    previous = read(catalog, "camry under 25k 2018 or newer").filters
    assert read(catalog, "cheaper", previous).recognized == ("price under $22,500",)
    assert read(catalog, "newer", previous).recognized == ("year 2020 or newer",)


def test_a_follow_up_keeps_what_it_does_not_mention(catalog: Catalog) -> None:
    previous = SearchFilters(
        make=["Toyota"], model=["Camry"], trim=["XLE"], status=["active", "sold"], q="sunroof"
    )
    filters = read(catalog, "only hybrids", previous).filters
    assert filters.trim == ["XLE"]
    assert set(filters.status) == {"active", "sold"}
    assert filters.q == "sunroof"
    # A new model drops the old trim with the old model.
    assert read(catalog, "what about a corolla", previous).filters.trim == []


def test_previous_search_params_keep_only_their_filters(catalog: Catalog) -> None:
    previous = SearchParams(make=["Honda"], sort=SortOrder.price_asc, page=3)
    filters = read(catalog, "cheaper", previous).filters
    assert type(filters) is SearchFilters
    assert filters.normalized() == {"make": ["Honda"], "price_max": CHEAP_PRICE_MAX}


# Preferences

PREFERENCES = {
    "home_zip": "10001",
    "radius": 25,
    "favorite_makes": ["Toyota", "Honda"],
    "body_styles": ["suv"],
    "price_max": 35000,
}


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # What the message leaves unset comes from the preferences; makes and body styles
        # never do.
        ("suv", {"body_style": ["suv"], "zip": "10001", "radius": 25, "price_max": 35000}),
        ("sedan", {"body_style": ["sedan"], "zip": "10001", "radius": 25, "price_max": 35000}),
        ("", {"zip": "10001", "radius": 25, "price_max": 35000}),
        ("under 20k", {"zip": "10001", "radius": 25, "price_max": 20000}),
        ("over 40k", {"zip": "10001", "radius": 25, "price_min": 40000}),
        ("over 20k", {"zip": "10001", "radius": 25, "price_min": 20000, "price_max": 35000}),
        ("near 94103", {"zip": "94103", "radius": 25, "price_max": 35000}),
        ("within 10 miles of 94103", {"zip": "94103", "radius": 10, "price_max": 35000}),
        ("within 100 miles", {"zip": "10001", "radius": 100, "price_max": 35000}),
        ("any price", {"zip": "10001", "radius": 25}),
    ],
)
def test_preferences_fill_only_what_is_left_unset(
    catalog: Catalog, message: str, expected: dict[str, Any]
) -> None:
    assert read(catalog, message, preferences=PREFERENCES).filters.normalized() == expected


def test_preferences_say_where_they_came_from(catalog: Catalog) -> None:
    understood = read(catalog, "suv", preferences=PREFERENCES)
    assert understood.recognized == (
        "body style SUV",
        "within 25 miles of 10001 (your home ZIP)",
        "price under $35,000 (your budget)",
    )


def test_preferences_do_not_override_previous_filters(catalog: Catalog) -> None:
    previous = SearchFilters(zip="94103", radius=10, price_max=15000)
    filters = read(catalog, "awd", previous, PREFERENCES).filters
    assert filters.normalized() == {
        "drivetrain": ["awd"],
        "zip": "94103",
        "radius": 10,
        "price_max": 15000,
    }


@pytest.mark.parametrize(
    "preferences",
    [
        {},
        {"home_zip": "99999", "radius": 25},
        {"home_zip": 10001, "radius": "far", "price_max": "cheap"},
        {"home_zip": "1000", "radius": True, "price_max": -5},
        {"home_zip": None, "radius": float("nan"), "price_max": float("inf")},
        {"radius": 10_000, "price_max": 99_000_000},
        {"favorite_makes": "Toyota", "body_styles": [None]},
    ],
)
def test_unusable_preferences_are_ignored(catalog: Catalog, preferences: dict[str, Any]) -> None:
    filters = read(catalog, "suv", preferences=preferences).filters
    assert filters.body_style == ["suv"]
    assert filters.zip is None
    assert filters.price_max is None
    assert filters.make == []


# Nothing raises, everything validates

FULLWIDTH_TOYOTA_CAMRY = "\uff54\uff4f\uff59\uff4f\uff54\uff41\u3000\uff43\uff41\uff4d\uff52\uff59"
ODD_MESSAGES = [
    "",
    "   ",
    "!!!???",
    "\x00\x01\x02",
    "🚗🚙 near 🏠",
    "٢٠١٩ تويوتا",
    FULLWIDTH_TOYOTA_CAMRY,
    "under under under",
    "between 25k and 15k",
    "2019-2015",
    "older than 1950",
    "newer than 2099",
    "under $99999999999999999999999",
    "under 1e400",
    "within 0 miles of 10001",
    "price -5",
    "9" * 5000,
    "a" * 5000,
    "toyota " * 400,
    "zip 10001-1234",
    "$ k k k 5k5k5k",
    "|||,,,;;;",
    "near near 10001 10001",
    "forget forget the the price",
]


@pytest.mark.parametrize("message", ODD_MESSAGES)
def test_odd_text_never_raises(catalog: Catalog, message: str) -> None:
    understood = read(catalog, message, previous=SearchFilters(make=["Honda"]))
    assert_valid(understood)


def test_full_width_letters_read_as_plain_ones(catalog: Catalog) -> None:
    assert read(catalog, FULLWIDTH_TOYOTA_CAMRY).filters.normalized() == TOYOTA_CAMRY


def test_contradicting_bounds_in_one_message_are_put_in_order(catalog: Catalog) -> None:
    filters = read(catalog, "between 25k and 15k, 2019-2015").filters
    assert (filters.price_min, filters.price_max) == (15000, 25000)
    assert (filters.year_min, filters.year_max) == (2015, 2019)


def test_only_the_start_of_a_long_message_is_read(catalog: Catalog) -> None:
    message = "x " * MAX_MESSAGE_CHARS + "toyota"
    assert read(catalog, message).filters.make == []


def assert_valid(understood: Understanding) -> None:
    data = understood.filters.model_dump()
    assert SearchFilters.model_validate(data) == understood.filters
    assert all(isinstance(phrase, str) and phrase for phrase in understood.recognized)
    assert understood.unknown_zip is None or (
        len(understood.unknown_zip) == 5 and understood.unknown_zip.isdigit()
    )


VOCABULARY = [
    "toyota",
    "camry",
    "hona",
    "civic",
    "f150",
    "rav",
    "4",
    "chevy",
    "mercedes",
    "vw",
    "under",
    "over",
    "between",
    "and",
    "to",
    "around",
    "max",
    "budget",
    "at least",
    "$",
    "k",
    "25k",
    "15,000",
    "2019",
    "2015-2019",
    "or newer",
    "older than",
    "miles",
    "mi",
    "low",
    "near",
    "in",
    "zip",
    "within",
    "10001",
    "99999",
    "radius",
    "suv",
    "awd",
    "red",
    "black",
    "interior",
    "on",
    "used",
    "new",
    "certified",
    "cheaper",
    "newer",
    "lower",
    "also",
    "only",
    "what about",
    "forget the price",
    "any",
    "start over",
    "-",
    "+",
    ",",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(st.sampled_from(VOCABULARY), max_size=25),
    noise=st.text(max_size=60),
    follow_up=st.booleans(),
)
def test_any_mix_of_our_words_validates(
    catalog: Catalog, words: list[str], noise: str, follow_up: bool
) -> None:
    message = " ".join(words) + noise
    previous = read(catalog, noise).filters if follow_up else None
    assert_valid(read(catalog, message, previous, PREFERENCES))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=st.text(max_size=300))
def test_any_text_validates(catalog: Catalog, message: str) -> None:
    assert_valid(read(catalog, message, SearchFilters(make=["Toyota"], price_max=20000)))
