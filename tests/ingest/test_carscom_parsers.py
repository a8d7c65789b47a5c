"""cars.com parsers against real recorded pages (see tests/fixtures/README.md).

Expected values were read off the fixture HTML by hand. Variants (a blob stripped, a key
renamed, an entity injected) are derived from the real pages inside the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache

import pytest
from recordings import CARSCOM_PAGES
from selectolax.lexbor import LexborHTMLParser

from carsearch.ingest.carscom import (
    BlockedPage,
    ListingGone,
    ParseError,
    detect_block,
    parse_any,
    parse_detail_page,
    parse_listing_card,
    parse_search_results,
)
from carsearch.ingest.records import ScrapedListing, SearchResultsPage

FIXTURES = CARSCOM_PAGES

SRP_2025 = "srp_2025-09_used_19102.html"
SRP_2026 = "srp_2026-05.html"
CARD_2026 = "srp_card_2026-05_price_drop.html"
VDP_2026 = "vdp_2026-05_dealer_used.html"
VDP_2025_PRIVATE = "vdp_2025-08_private_seller.html"
VDP_GONE = "vdp_2016_vehicle_not_found.html"
CLOUDFLARE = "challenge_2026-07_cloudflare_403.html"
CONTENT_PAGES = (SRP_2025, SRP_2026, CARD_2026, VDP_2026, VDP_2025_PRIVATE, VDP_GONE)

# The body Akamai's edge returns when it refuses a request.
AKAMAI_ACCESS_DENIED = """<HTML><HEAD>
<TITLE>Access Denied</TITLE>
</HEAD><BODY>
<H1>Access Denied</H1>

You don't have permission to access "http&#58;&#47;&#47;www&#46;cars&#46;com&#47;"
on this server.<P>
Reference&#32;&#35;18&#46;6f1e2e17&#46;1753900000&#46;2b1c3d4
<P>https&#58;&#47;&#47;errors&#46;edgesuite&#46;net&#47;18&#46;6f1e2e17&#46;1753900000&#46;2b1c3d4</P>
</BODY>
</HTML>
"""


@cache
def page_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@cache
def results_2025() -> SearchResultsPage:
    return parse_search_results(page_text(SRP_2025))


@cache
def results_2026() -> SearchResultsPage:
    return parse_search_results(page_text(SRP_2026))


@cache
def detail_2026() -> ScrapedListing:
    return parse_detail_page(page_text(VDP_2026))


@cache
def detail_2025_private() -> ScrapedListing:
    return parse_detail_page(page_text(VDP_2025_PRIVATE))


def listing_with_id(page: SearchResultsPage, prefix: str) -> ScrapedListing:
    (listing,) = [x for x in page.listings if x.source_listing_id.startswith(prefix)]
    return listing


def card_html(page_name: str, listing_id: str) -> str:
    tree = LexborHTMLParser(page_text(page_name))
    card = tree.css_first(
        f'[data-listing-id="{listing_id}"][data-vehicle-details], '
        f'div.vehicle-card[data-listing-id="{listing_id}"]'
    )
    assert card is not None
    assert card.html is not None
    return card.html


def without_script(page: str, script_id: str) -> str:
    pattern = rf'<script[^>]*id="{re.escape(script_id)}"[^>]*>.*?</script>'
    stripped, count = re.subn(pattern, "", page, flags=re.S)
    assert count == 1
    return stripped


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# Results, 2025 layout (vehicleArray + div.vehicle-card)


def test_results_2025_counts_come_from_the_blob() -> None:
    page = results_2025()

    assert len(page.listings) == 50
    assert page.total_results == 975
    assert page.page == 1
    # The blob says 50 a page and 20 pages (ceil(975 / 50)).
    assert page.total_pages == 20


def test_results_2025_first_listing_is_a_private_seller() -> None:
    listing = results_2025().listings[0]

    assert listing.source == "carscom"
    assert listing.source_listing_id == "8d1ca7c7-b0f8-49f9-82cc-4be8bde1942f"
    assert listing.url == "https://www.cars.com/vehicledetail/8d1ca7c7-b0f8-49f9-82cc-4be8bde1942f/"
    assert listing.vin == "3C3CFFBR0CT383069"
    assert (listing.price, listing.mileage) == (4300, 101000)
    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2012,
        "FIAT",
        "500",
        "Sport",
    )
    assert listing.condition == "used"
    assert (listing.exterior_color, listing.interior_color) == ("Brown", "Brown")
    assert (listing.drivetrain, listing.fuel_type) == ("Front-wheel Drive", "Gasoline")
    assert listing.body_style == "Hatchback"
    assert listing.msrp is None
    assert listing.private_seller is True
    assert listing.dealer is None


def test_results_2025_dealer_joins_blob_and_card() -> None:
    listing = listing_with_id(results_2025(), "aabef0fd")

    assert listing.vin == "JTKDE177270165837"
    assert (listing.price, listing.mileage) == (4350, 144000)
    assert listing.msrp is None  # the blob says "0"
    assert listing.private_seller is False
    dealer = listing.dealer
    assert dealer is not None
    assert dealer.source_dealer_id == "195243"
    assert dealer.name == "The Car Place"
    assert (dealer.city, dealer.state, dealer.zip) == ("Somers", "CT", "06071")
    assert dealer.phone == "8604674010"
    # "Not rated" is drawn as 0 stars, with the review count beside it.
    assert dealer.rating is None
    assert dealer.review_count == 20


def test_results_2025_rated_dealers() -> None:
    liccardi = listing_with_id(results_2025(), "c26088b0").dealer
    alpha = listing_with_id(results_2025(), "e2af1ff1").dealer

    assert liccardi is not None
    assert alpha is not None
    assert (liccardi.rating, liccardi.review_count) == (4.5, 919)
    assert (liccardi.city, liccardi.state) == ("Green Brook", "NJ")
    assert (alpha.rating, alpha.review_count) == (4.1, 1488)


def test_results_2025_price_drops_and_entity_in_dealer_name() -> None:
    page = results_2025()
    listing = listing_with_id(page, "8c59acf1")

    assert listing.price_drop is True
    assert listing.price == 2195
    assert listing.dealer is not None
    assert listing.dealer.name == "A&R Auto"  # "A&amp;R Auto" in the page
    assert (listing.dealer.city, listing.dealer.state) == ("CLAYTON", "NJ")
    assert sum(x.price_drop for x in page.listings) == 6


def test_results_2025_sellers_and_conditions() -> None:
    page = results_2025()

    assert sum(x.private_seller for x in page.listings) == 12
    assert all(x.dealer is None for x in page.listings if x.private_seller)
    assert all(x.dealer is not None for x in page.listings if not x.private_seller)
    assert {x.condition for x in page.listings} == {"used"}
    assert len({x.source_listing_id for x in page.listings}) == 50


def test_results_2025_drops_images_saved_as_local_files() -> None:
    # This page was saved from a browser, so its images point at local files.
    assert all(x.images == () for x in results_2025().listings)


def test_card_2025_alone_gives_card_fields_and_absolute_images() -> None:
    saved = card_html(SRP_2025, "aabef0fd-bb64-48df-9dff-fc1b13f91dff")
    online = saved.replace(
        "./Used Vehicles for Sale Near Philadelphia, PA _ Cars.com_files/",
        "https://platform.cstatic-images.com/large/in/v2/x/",
    )

    listing = parse_listing_card(online)

    assert listing.source_listing_id == "aabef0fd-bb64-48df-9dff-fc1b13f91dff"
    assert listing.vin == "JTKDE177270165837"
    assert (listing.price, listing.mileage) == (4350, 144000)
    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2007,
        "Scion",
        "tC",
        "Base",
    )
    assert listing.condition == "used"
    assert len(listing.images) == 6
    assert listing.images[0] == (
        "https://platform.cstatic-images.com/large/in/v2/x/qFDoM_w3BrtGYtUL4aTetRxHLnY.jpg"
    )
    assert listing.dealer is not None
    assert (listing.dealer.name, listing.dealer.phone) == ("The Car Place", "8604674010")


def test_card_2025_private_seller_and_price_drop() -> None:
    private = parse_listing_card(card_html(SRP_2025, "8d1ca7c7-b0f8-49f9-82cc-4be8bde1942f"))
    dropped = parse_listing_card(card_html(SRP_2025, "8c59acf1-251e-446e-b1ef-df2de3a79ad1"))

    assert (private.private_seller, private.dealer, private.price) == (True, None, 4300)
    assert (private.make, private.model, private.year) == ("FIAT", "500", 2012)
    assert dropped.price_drop is True
    assert private.price_drop is False


# Results, 2026 layout (SearchController.index blob + fuse-card)


def test_results_2026_counts() -> None:
    page = results_2026()

    # 24 standard cards plus 3 sponsored ones; the three ad units are not listings.
    assert len(page.listings) == 27
    assert page.total_results == 197
    assert page.page == 1
    assert page.total_pages == 9


def test_results_2026_first_listing() -> None:
    listing = results_2026().listings[0]

    assert listing.source_listing_id == "1887c712-4ede-4415-8ece-0b9a2ec390e5"
    assert listing.vin == "19XFC2F75HE078455"
    assert (listing.price, listing.mileage) == (14914, 103188)
    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2017,
        "Honda",
        "Civic",
        "EX",
    )
    assert (listing.body_style, listing.fuel_type, listing.condition) == (
        "Sedan",
        "Gasoline",
        "used",
    )
    assert listing.price_drop is True
    assert len(listing.images) == 6
    assert listing.images[0].startswith("https://platform.cstatic-images.com/large/in/v2/9cdc8c98")
    dealer = listing.dealer
    assert dealer is not None
    assert dealer.source_dealer_id == "9cdc8c98-b932-5b25-af05-eb7526a46e59"
    assert dealer.name == "Mercedes-Benz of Stevens Creek"
    assert (dealer.city, dealer.state, dealer.zip, dealer.rating) == (
        "San Jose",
        "CA",
        "95129",
        4.4,
    )


def test_results_2026_certified_wins_over_used_stock_type() -> None:
    page = results_2026()
    listing = listing_with_id(page, "bffbd083")

    assert listing.condition == "cpo"  # stockType "Used" with cpoIndicator true
    assert listing.vin is not None
    assert [x.source_listing_id[:8] for x in page.listings if x.condition == "cpo"] == [
        "bffbd083",
        "10bfc2a1",
        "a00c2e80",
    ]


def test_results_2026_private_seller() -> None:
    listing = listing_with_id(results_2026(), "e9932416")

    assert listing.private_seller is True
    assert listing.dealer is None
    assert (listing.vin, listing.price) == ("2HGFA1F56AH539494", 10188)


def test_results_2026_delivery_town_is_not_the_dealer_location() -> None:
    dealer = listing_with_id(results_2026(), "7b6af035").dealer

    assert dealer is not None
    assert (dealer.name, dealer.zip) == ("CarMax Fresno", "93650")
    assert dealer.city is None  # the card says "Free delivery to Colma, CA"


def test_results_2026_cards_alone_give_the_same_listings() -> None:
    tree = LexborHTMLParser(page_text(SRP_2026))
    cards = tree.css("fuse-card[data-vehicle-details]")

    from_cards = [parse_listing_card(card.html or "") for card in cards]

    assert from_cards == list(results_2026().listings)


def test_results_2026_pages_counted_from_total_when_the_page_does_not_say() -> None:
    page = replace_once(
        page_text(SRP_2026),
        '"total_pages":9,"listings":null',
        '"total_pages":null,"listings":null',
    )
    page = replace_once(page, '"total_listings":197', '"total_listings":250')

    assert parse_search_results(page).total_pages == 11  # ceil(250 / 24)


# A single 2026 card


def test_card_2026_with_price_drop_badge() -> None:
    listing = parse_listing_card(page_text(CARD_2026))

    assert listing.source_listing_id == "45019c6a-c8d2-4a6a-94cd-f67e4b9432b8"
    assert listing.url == "https://www.cars.com/vehicledetail/45019c6a-c8d2-4a6a-94cd-f67e4b9432b8/"
    assert listing.price_drop is True
    assert listing.vin == "7FARW2H9XME010938"
    assert (listing.price, listing.mileage, listing.msrp) == (25958, 74865, None)
    assert (listing.year, listing.make, listing.model) == (2021, "Honda", "CR-V")
    assert listing.trim == "AWD Touring"
    assert (listing.drivetrain, listing.exterior_color) == ("All-wheel Drive", "White")
    assert (listing.body_style, listing.condition) == ("SUV", "used")
    assert len(listing.images) == 6
    dealer = listing.dealer
    assert dealer is not None
    assert dealer.name == "Tim Dahle Nissan Southtowne"
    assert (dealer.rating, dealer.city, dealer.state, dealer.zip) == (
        3.9,
        "South Jordan",
        "UT",
        "84095",
    )
    assert dealer.source_dealer_id == "6fcb12fd-1f9a-5d50-bcd5-ed2a292ffb52"


def test_card_2026_without_price_drop_badge() -> None:
    card = re.sub(
        r'<div class="datum-icon price-drop.*?</div>', "", page_text(CARD_2026), flags=re.S
    )

    assert parse_listing_card(card).price_drop is False


def test_card_2026_accepts_snake_case_keys() -> None:
    tree = LexborHTMLParser(page_text(CARD_2026))
    card = tree.css_first("fuse-card")
    assert card is not None
    camel_json = card.attributes["data-vehicle-details"] or ""
    snake = {
        re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value
        for key, value in json.loads(camel_json).items()
    }
    assert {"listing_id", "body_style", "stock_type", "cpo_indicator"} <= snake.keys()
    snake_card = replace_once(page_text(CARD_2026), camel_json, json.dumps(snake))

    assert parse_listing_card(snake_card) == parse_listing_card(page_text(CARD_2026))


def test_html_entities_inside_json_strings_are_decoded() -> None:
    page = replace_once(
        page_text(VDP_2026),
        '"dealer_name":"F H Dailey Chevrolet"',
        '"dealer_name":"Driver&#39;s Village"',
    )

    dealer = parse_detail_page(page).dealer

    assert dealer is not None
    assert dealer.name == "Driver's Village"


# Detail pages


def test_detail_2026_vehicle() -> None:
    listing = detail_2026()

    assert listing.source_listing_id == "3715142b-250e-4689-a303-e5924eb2ceaa"
    assert listing.url == "https://www.cars.com/vehicledetail/3715142b-250e-4689-a303-e5924eb2ceaa/"
    assert listing.vin == "19XFC2F69LE000132"
    assert (listing.price, listing.mileage, listing.msrp) == (20997, 76939, None)
    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2020,
        "Honda",
        "Civic",
        "LX",
    )
    assert listing.condition == "used"
    assert (listing.exterior_color, listing.interior_color) == ("Silver", "Black")
    assert (listing.drivetrain, listing.fuel_type) == ("Front-wheel Drive", "Gasoline")
    assert listing.transmission == "Automatic CVT"
    assert listing.engine == "2.0L I4 16V MPFI DOHC"
    assert (listing.mpg_city, listing.mpg_highway) == (30, 38)
    assert listing.body_style == "Sedan"
    assert listing.price_drop is False
    assert listing.private_seller is False


def test_detail_2026_dealer() -> None:
    dealer = detail_2026().dealer

    assert dealer is not None
    assert dealer.name == "F H Dailey Chevrolet"
    assert dealer.address == "800 Davis St"
    assert (dealer.city, dealer.state, dealer.zip) == ("San Leandro", "CA", "94577")
    assert dealer.phone == "(888) 823-3489"
    assert (dealer.rating, dealer.review_count) == (4.2, 137)
    assert dealer.website == "https://www.fhdailey.com/"
    # The same dealer id as on the 2026 results page.
    results_dealer = listing_with_id(results_2026(), "3715142b").dealer
    assert results_dealer is not None
    assert dealer.source_dealer_id == results_dealer.source_dealer_id
    assert dealer.source_dealer_id == "83d058b5-404a-5a30-83c3-3aeb8aecd088"


def test_detail_2026_images_features_description() -> None:
    listing = detail_2026()

    # The gallery shows 11 photos, the first one twice.
    assert len(listing.images) == 10
    assert len(set(listing.images)) == 10
    assert all(
        url.startswith("https://platform.cstatic-images.com/xxlarge/") for url in listing.images
    )
    assert len(listing.features) == 9
    assert "Adaptive Cruise Control" in listing.features
    assert "Bluetooth®" in listing.features
    assert listing.description is not None
    assert listing.description.startswith("Black Cloth. 30/38 City/Highway MPG Silver")
    assert listing.description.endswith("We work hard so you don't have too.")


def test_detail_2026_agrees_with_its_results_card() -> None:
    from_results = listing_with_id(results_2026(), "3715142b")
    detail = detail_2026()

    assert (detail.vin, detail.price, detail.mileage) == (
        from_results.vin,
        from_results.price,
        from_results.mileage,
    )


def test_detail_2025_private_seller() -> None:
    listing = detail_2025_private()

    assert listing.source_listing_id == "f36525be-f38b-4213-ad98-f5c0af0d0dba"
    assert listing.url == "https://www.cars.com/vehicledetail/f36525be-f38b-4213-ad98-f5c0af0d0dba/"
    assert listing.private_seller is True
    assert listing.dealer is None
    assert listing.vin == "WP0AB2A89AU780654"
    assert (listing.price, listing.mileage) == (24000, 142400)
    assert (listing.year, listing.make, listing.model, listing.trim) == (
        2010,
        "Porsche",
        "Cayman",
        "S",
    )
    assert listing.condition == "used"
    assert (listing.exterior_color, listing.interior_color) == ("Gray", "Black")
    assert listing.drivetrain == "Rear-wheel Drive"
    assert listing.transmission == "7-Speed A/T"
    assert listing.engine == "320.0HP 3.4L Flat 6 Cylinder Engine Gasoline Fuel"
    assert (listing.mpg_city, listing.mpg_highway) == (None, None)  # not on this page
    assert listing.body_style == "Coupe"


def test_detail_2025_images_features_description() -> None:
    listing = detail_2025_private()

    assert len(listing.images) == 10
    assert listing.images[0] == (
        "https://platform.cstatic-images.com/xlarge/in/v2/p2p/"
        "5330d6a7-094e-4aa4-a80e-c211800671cc/a51610aa-0853-4a2a-bdfd-3c5fe83e7bc6.jpg"
    )
    assert len(listing.features) == 12
    assert listing.features[:2] == ("Cooled Seats", "Heated Seats")
    assert listing.description is not None
    assert listing.description.startswith(
        "For Sale: 2010 Porsche Cayman S - PDK, Full Leather, Sport Chrono - $24,000 OBO\n"
        "Car runs and drives perfectly."
    )


def test_detail_falls_back_to_page_text_without_activity_blob() -> None:
    page = without_script(page_text(VDP_2025_PRIVATE), "initial-activity-data")

    listing = parse_detail_page(page)

    assert listing.source_listing_id == "f36525be-f38b-4213-ad98-f5c0af0d0dba"
    assert (listing.vin, listing.price, listing.mileage) == ("WP0AB2A89AU780654", 24000, 142400)
    assert (listing.year, listing.condition, listing.transmission) == (2010, "used", "7-Speed A/T")


def test_vehicle_not_found_raises_listing_gone() -> None:
    url = "https://www.cars.com/vehicledetail/detail/654321987/overview/"

    with pytest.raises(ListingGone) as gone:
        parse_detail_page(page_text(VDP_GONE), url=url)
    assert gone.value.listing_id == "654321987"
    with pytest.raises(ListingGone):
        parse_any(page_text(VDP_GONE))
    with pytest.raises(ParseError, match="got a gone page"):
        parse_search_results(page_text(VDP_GONE))


# Bot checks and blocked pages


def test_cloudflare_challenge_is_blocked_everywhere() -> None:
    page = page_text(CLOUDFLARE)

    reason = detect_block(page)

    assert reason is not None
    assert "Cloudflare" in reason
    for parse in (parse_search_results, parse_detail_page, parse_listing_card, parse_any):
        with pytest.raises(BlockedPage) as blocked:
            parse(page)
        assert blocked.value.reason == reason


def test_akamai_access_denied_is_blocked() -> None:
    assert detect_block(AKAMAI_ACCESS_DENIED) == "Akamai Access Denied"
    with pytest.raises(BlockedPage, match="Akamai"):
        parse_search_results(AKAMAI_ACCESS_DENIED)


@pytest.mark.parametrize("name", CONTENT_PAGES)
def test_real_pages_are_not_taken_for_blocks(name: str) -> None:
    assert detect_block(page_text(name)) is None


def results_page_without_blob(layout: str) -> str:
    if layout == "2026":
        return without_script(page_text(SRP_2026), "CarsWeb.SearchController.index")
    stripped, count = re.subn(r'data-site-activity="[^"]*"', "", page_text(SRP_2025))
    assert count == 1
    return stripped


@pytest.mark.parametrize("layout", ["2025", "2026"])
def test_results_page_without_its_blob_is_blocked_not_empty(layout: str) -> None:
    page = results_page_without_blob(layout)

    with pytest.raises(BlockedPage, match="no listings data"):
        parse_search_results(page)
    with pytest.raises(BlockedPage):
        parse_any(page)


def test_results_blob_counting_listings_it_does_not_hold_is_a_parse_error() -> None:
    page = page_text(SRP_2026)
    tree = LexborHTMLParser(page)
    script = tree.css_first('script[id="CarsWeb.SearchController.index"]')
    assert script is not None
    blob = json.loads(script.text())
    blob["srp_results"]["results"] = []
    emptied = replace_once(page, script.text(), json.dumps(blob))

    with pytest.raises(ParseError, match="counts 197 listings but holds none"):
        parse_search_results(emptied)


# Garbage and wrong input


@pytest.mark.parametrize(
    "parse", [parse_search_results, parse_detail_page, parse_listing_card, parse_any]
)
@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param("", id="empty"),
        pytest.param(" \n\t", id="blank"),
        pytest.param("just some random text", id="text"),
        pytest.param('{"listing_id": "abc"}', id="json"),
        pytest.param("<html><body><p>hello</p></body></html>", id="other-html"),
        pytest.param("<<<>>> \x00 </", id="noise"),
        pytest.param(
            "<fuse-card data-listing-id='x' data-vehicle-details='{\"vin\":", id="cut-card"
        ),
    ],
)
def test_garbage_raises_parse_error(parse: Callable[[str], object], garbage: str) -> None:
    with pytest.raises(ParseError):
        parse(garbage)


def test_truncated_pages_raise_parse_error() -> None:
    with pytest.raises(ParseError, match="truncated"):
        parse_search_results(page_text(SRP_2026)[:100_000])
    with pytest.raises(ParseError, match="not valid JSON"):
        parse_search_results(page_text(SRP_2026)[:400_000])  # cut inside the blob
    with pytest.raises(ParseError, match="truncated"):
        parse_search_results(page_text(SRP_2025)[:700_000])  # cut inside the attribute
    with pytest.raises(ParseError, match="truncated"):
        parse_detail_page(page_text(VDP_2026)[:100_000])
    with pytest.raises(ParseError, match="truncated"):
        parse_listing_card(page_text(CARD_2026)[:3000])


def test_broken_card_json_raises_parse_error() -> None:
    card = replace_once(page_text(CARD_2026), '{"trim":"AWD Touring"', '{"trim":"AWD Touring",,')

    with pytest.raises(ParseError, match="data-vehicle-details is not valid JSON"):
        parse_listing_card(card)


def test_wrong_kind_of_page_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="expected a detail page, got a results page"):
        parse_detail_page(page_text(SRP_2026))
    with pytest.raises(ParseError, match="expected a results page, got a detail page"):
        parse_search_results(page_text(VDP_2026))
    with pytest.raises(ParseError, match="expected one listing card, found 27"):
        parse_listing_card(page_text(SRP_2026))


def test_non_text_input_raises_parse_error() -> None:
    with pytest.raises(ParseError, match="expected HTML text"):
        parse_search_results(b"<html></html>")  # type: ignore[arg-type]


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ParseError, ValueError)


# Sniffing


def test_parse_any_sniffs_each_kind() -> None:
    assert parse_any(page_text(SRP_2025)) == results_2025()
    assert parse_any(page_text(SRP_2026)) == results_2026()
    assert parse_any(page_text(VDP_2026)) == detail_2026()
    assert parse_any(page_text(VDP_2025_PRIVATE)) == detail_2025_private()
    assert parse_any(page_text(CARD_2026)) == parse_listing_card(page_text(CARD_2026))
