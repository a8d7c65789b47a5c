"""cars.com page parsers: HTML text in, typed records out.

Pure functions, no I/O. A page's embedded JSON is read first and its visible markup
second; both are merged, the JSON winning where they disagree. Layouts handled:

- results, 2025 (LiveView "sds/spark"): `div.listings-page[data-site-activity]` JSON with
  `vehicleArray`, plus `div.vehicle-card[data-listing-id]` cards;
- results, 2026 ("srp2025" fuse): `script#CarsWeb.SearchController.index` JSON, plus
  `fuse-card`/`spark-card` elements carrying `data-vehicle-details` JSON;
- a single result card of either era (`parse_listing_card`);
- detail pages, 2025-2026: `script#initial-activity-data`, the controller's JSON
  (`CarsWeb.VehicleDetailController.show` or `CarsWeb.ListingController.show`), and the
  specs, seller's notes, gallery and dealer sections;
- the legacy "Vehicle Not Found" page.

Every outcome other than a record is an exception derived from `CarsComPageError`:

- `BlockedPage`: a bot challenge (Cloudflare, Akamai, DataDome, PerimeterX), or a
  complete cars.com page that came without its data blob. Back off and retry later; it
  must never be read as "0 listings".
- `ListingGone`: the detail page says the listing was sold or removed. It is raised
  rather than returned so that a returned `ScrapedListing` always means a live listing;
  the caller marks the listing inactive.
- `ParseError` (also a `ValueError`): anything else we cannot read: empty input, not
  HTML, not cars.com, truncated, broken JSON, or the wrong kind of page for the function.
"""

from __future__ import annotations

import html as html_entities
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode

from carsearch.ingest.records import (
    ListingCondition,
    ScrapedDealer,
    ScrapedListing,
    SearchResultsPage,
)

SOURCE = "carscom"
DEFAULT_BASE_URL = "https://www.cars.com"
# Since 2026 a results page holds 24 cards; used when the page does not say.
RESULTS_PER_PAGE = 24

PageKind = Literal["results", "detail", "card", "gone"]
JsonObject = Mapping[str, object]

_CANONICAL_LISTING_URL = "https://www.cars.com/vehicledetail/{}/"
_RESULTS_BLOB_SCRIPT = "CarsWeb.SearchController.index"
_DETAIL_CONTROLLER_SCRIPTS = (
    "CarsWeb.VehicleDetailController.show",
    "CarsWeb.ListingController.show",
)
_CARD_SELECTOR = "[data-vehicle-details], div.vehicle-card[data-listing-id]"
_RESULTS_MARKERS = ('script[id^="CarsWeb.SearchController"]', "div.listings-page")
_DETAIL_MARKERS = tuple(f'script[id="{script_id}"]' for script_id in _DETAIL_CONTROLLER_SCRIPTS)

_CLOUDFLARE_TITLES = frozenset({"just a moment...", "attention required! | cloudflare"})
_GONE_TITLE_PHRASES = ("vehicle not found", "listing not found")
_GONE_HEADING_PHRASES = ("sorry, you're too late", "sorry, you\u2019re too late")

_LISTING_ID_IN_URL_RE = re.compile(r"/vehicledetail/(?:detail/)?([A-Za-z0-9-]+)")
_NUMBER_RE = re.compile(r"\$?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*(?:mi\.?|miles))?", re.I)
_YEAR_RE = re.compile(r"\b(19[0-9]{2}|20[0-9]{2})\b")
# Ranges are written with a hyphen, an en or em dash, or a slash: "30-38", "19\u201326".
_MPG_RE = re.compile("(\\d{1,3})\\s*(?:city)?\\s*[-\u2013\u2014/]\\s*(\\d{1,3})", re.I)
_CITY_STATE_RE = re.compile(r"^\s*(?P<city>[^,()]+?)\s*,\s*(?P<state>[A-Z]{2})\b")
_ADDRESS_RE = re.compile(
    r"^(?P<street>.+?),\s*(?P<city>[^,]+?),\s*(?P<state>[A-Z]{2})\s+(?P<zip>\d{5}(?:-\d{4})?)$"
)
_REVIEW_COUNT_RE = re.compile(r"([\d,]+)\s+reviews?\b", re.I)
_VIN_IN_TEXT_RE = re.compile(r"\bVIN:\s*([A-HJ-NPR-Z0-9]{17})\b")

# 2026 detail pages write the basics as sentences: "Silver exterior color", "30-38 mpg".
_BASICS_SENTENCE_SUFFIXES = (
    ("exterior color", "exterior_color"),
    ("interior color", "interior_color"),
    ("fuel type", "fuel_type"),
    ("drivetrain", "drivetrain"),
    ("transmission", "transmission"),
    ("engine", "engine"),
    ("mpg", "mpg"),
)
# 2025 detail pages use a <dl> of label and value.
_BASICS_LABELS = {
    "exterior color": "exterior_color",
    "interior color": "interior_color",
    "fuel type": "fuel_type",
    "drivetrain": "drivetrain",
    "transmission": "transmission",
    "engine": "engine",
    "mpg": "mpg",
    "vin": "vin",
    "mileage": "mileage",
}


class CarsComPageError(Exception):
    """A cars.com page that did not yield the record asked for."""


class ParseError(CarsComPageError, ValueError):
    """The page is empty, truncated, not cars.com, or in a layout we cannot read."""


class BlockedPage(CarsComPageError):
    """cars.com served a bot check (or a page shell without its data) instead of the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"blocked page: {reason}")
        self.reason = reason


class ListingGone(CarsComPageError):
    """The detail page says the listing was sold or removed."""

    def __init__(self, listing_id: str | None = None) -> None:
        super().__init__(f"listing {listing_id} is gone" if listing_id else "listing is gone")
        self.listing_id = listing_id


# Public API


def detect_block(html: str) -> str | None:
    """Why this page is a bot challenge rather than content, or None if it is not one."""
    if not isinstance(html, str) or not html.strip():
        return None
    return _block_reason(LexborHTMLParser(html), html)


def parse_search_results(html: str, *, base_url: str = DEFAULT_BASE_URL) -> SearchResultsPage:
    """Listings, total and page numbers of a results page (2025 or 2026 layout).

    Raises `BlockedPage` for a challenge or a results page without its data blob, and
    `ParseError` for anything that is not a readable results page.
    """
    tree = _parse_page(html)
    kind = _page_kind(tree)
    if kind in ("detail", "gone", "card"):
        raise ParseError(f"expected a results page, got a {kind} page")
    return _results_from_tree(tree, html, base_url)


def parse_listing_card(html: str, *, base_url: str = DEFAULT_BASE_URL) -> ScrapedListing:
    """The listing in the HTML of exactly one result card (2025 or 2026 layout)."""
    return _single_card_listing(_parse_page(html), html, base_url)


def parse_detail_page(html: str, *, url: str | None = None) -> ScrapedListing:
    """Everything a detail page tells about its listing.

    `url` is the address the page was fetched from: it resolves relative links and names
    the listing when the page does not. Raises `ListingGone` for a sold or removed
    listing, `BlockedPage` for a challenge, `ParseError` for anything unreadable.
    """
    tree = _parse_page(html)
    kind = _page_kind(tree)
    if kind in ("results", "card"):
        raise ParseError(f"expected a detail page, got a {kind} page")
    if kind == "gone":
        raise ListingGone(_listing_id_from_url(url))
    return _detail_from_tree(tree, html, url)


def parse_any(html: str, *, base_url: str = DEFAULT_BASE_URL) -> SearchResultsPage | ScrapedListing:
    """Sniff the kind of page (results, detail, single card) and parse it accordingly.

    Raises the same exceptions as the specific parsers, and `ParseError` for a page of
    no kind we know.
    """
    tree = _parse_page(html)
    kind = _page_kind(tree)
    if kind == "gone":
        raise ListingGone()
    if kind == "detail":
        return _detail_from_tree(tree, html, None)
    if kind == "card":
        return _single_card_listing(tree, html, base_url)
    if kind == "results":
        return _results_from_tree(tree, html, base_url)
    raise ParseError("not a cars.com results, detail or card page")


# Page level: parsing, blocks, kinds


def _parse_page(html: object) -> LexborHTMLParser:
    if not isinstance(html, str):
        raise ParseError(f"expected HTML text, got {type(html).__name__}")
    if not html.strip():
        raise ParseError("empty page")
    tree = LexborHTMLParser(html)
    reason = _block_reason(tree, html)
    if reason is not None:
        raise BlockedPage(reason)
    return tree


def _block_reason(tree: LexborHTMLParser, html: str) -> str | None:
    title = _page_title(tree) or ""
    normalized_title = title.lower()
    # Normal cars.com pages also load /cdn-cgi/challenge-platform/ scripts, so only the
    # challenge's own options object and its titles count as markers.
    if normalized_title in _CLOUDFLARE_TITLES or "window._cf_chl_opt" in html:
        return f"Cloudflare challenge ({title or 'no title'})"
    if normalized_title == "access denied" or "errors.edgesuite.net" in html:
        return "Akamai Access Denied"
    if "captcha-delivery.com" in html:
        return "DataDome captcha"
    if tree.css_first("#px-captcha") is not None:
        return "PerimeterX captcha"
    return None


def _page_kind(tree: LexborHTMLParser) -> PageKind | None:
    if _is_gone_page(tree):
        return "gone"
    page_url = _page_url(tree) or ""
    if _has_any(tree, _DETAIL_MARKERS) or "/vehicledetail/" in page_url:
        return "detail"
    if _has_any(tree, _RESULTS_MARKERS) or "/shopping/" in page_url:
        return "results"
    if tree.css_first("head > title") is None and tree.css_first(_CARD_SELECTOR) is not None:
        return "card"
    return None


def _has_any(tree: LexborHTMLParser, selectors: Iterable[str]) -> bool:
    return any(tree.css_first(selector) is not None for selector in selectors)


def _is_gone_page(tree: LexborHTMLParser) -> bool:
    title = (_page_title(tree) or "").lower()
    if any(phrase in title for phrase in _GONE_TITLE_PHRASES):
        return True
    heading = _node_text(tree.css_first("h1"))
    return heading is not None and heading.lower().startswith(_GONE_HEADING_PHRASES)


def _page_title(tree: LexborHTMLParser) -> str | None:
    # Inline SVGs carry <title>s of their own; the document's is in <head>.
    return _node_text(tree.css_first("head > title") or tree.css_first("title"))


def _page_url(tree: LexborHTMLParser) -> str | None:
    canonical = tree.css_first('link[rel="canonical"]')
    if canonical is not None and canonical.attributes.get("href"):
        return canonical.attributes.get("href")
    og_url = tree.css_first('meta[property="og:url"]')
    return og_url.attributes.get("content") if og_url is not None else None


def _is_carscom_page(tree: LexborHTMLParser) -> bool:
    title = (_page_title(tree) or "").lower()
    page_url = _page_url(tree) or ""
    return (
        "cars.com" in title
        or urlsplit(page_url).hostname in ("cars.com", "www.cars.com")
        or tree.css_first('script[id^="CarsWeb"]') is not None
    )


def _looks_complete(html: str) -> bool:
    return "</html" in html[-65536:].lower()


def _missing_data_error(tree: LexborHTMLParser, html: str, what: str) -> CarsComPageError:
    """The error for a page that lacks the data blob its kind always carries."""
    if not _is_carscom_page(tree):
        return ParseError(f"{what}: not a cars.com page")
    if not _looks_complete(html):
        return ParseError(f"{what}: the page is truncated")
    # A complete cars.com page shell without its data is how the bot check answers with 200.
    return BlockedPage(f"{what} (page shell served without its data)")


# Results pages


def _results_from_tree(tree: LexborHTMLParser, html: str, base_url: str) -> SearchResultsPage:
    blob = _script_json(tree, _RESULTS_BLOB_SCRIPT)
    if blob is not None:
        return _results_2026(tree, _as_mapping(blob), base_url)
    listings_page = tree.css_first("div.listings-page[data-site-activity]")
    site_activity = listings_page.attributes.get("data-site-activity") if listings_page else None
    if site_activity and site_activity.strip():
        activity = _as_mapping(_load_json(site_activity, "data-site-activity"))
        return _results_2025(tree, activity, base_url)
    raise _missing_data_error(tree, html, "results page has no listings data")


def _results_2026(tree: LexborHTMLParser, blob: JsonObject, base_url: str) -> SearchResultsPage:
    results = _as_mapping(_pick(blob, "srp_results"))
    if not results:
        raise ParseError("results data has no srp_results")
    cards = _cards_by_listing_id(tree)
    listings = []
    for entry in _as_list(_pick(results, "results")):
        listing = _listing_from_2026_result(_as_mapping(entry), base_url)
        if listing is None:
            continue
        card = cards.get(listing.source_listing_id)
        if card is not None:
            listing = _merge_listings(listing, _listing_from_card(card, base_url))
        listings.append(listing)
    metadata = _as_mapping(_pick(results, "metadata"))
    total = _int_value(_pick(metadata, "total_listings"))
    if total is None:
        total = _int_value(_pick(_as_mapping(_pick(blob, "srp_filters")), "result_count"))
    total_pages = _total_pages(
        total,
        stated=_int_value(_pick(metadata, "total_pages")),
        per_page=_int_value(_pick(metadata, "page_size")),
    )
    return _results_page(listings, total, _int_value(_pick(metadata, "page")), total_pages)


def _results_2025(tree: LexborHTMLParser, activity: JsonObject, base_url: str) -> SearchResultsPage:
    cards = _cards_by_listing_id(tree)
    listings = []
    for entry in _as_list(_pick(activity, "vehicle_array")):
        vehicle = _as_mapping(entry)
        if _text_value(_pick(vehicle, "listing_id")) is None:
            continue
        listing = _listing_from_vehicle_json(vehicle)
        card = cards.get(listing.source_listing_id)
        if card is not None:
            listing = _merge_listings(listing, _listing_from_card(card, base_url))
        listings.append(listing)
    total = _int_value(_pick(activity, "total_results"))
    total_pages = _total_pages(
        total,
        stated=_int_value(_pick(activity, "result_page_count")),
        per_page=_int_value(_pick(activity, "result_per_page", "search_results_on_page")),
    )
    page = _int_value(_pick(activity, "result_page_number"))
    return _results_page(listings, total, page, total_pages)


def _results_page(
    listings: list[ScrapedListing], total: int | None, page: int | None, total_pages: int | None
) -> SearchResultsPage:
    within_results = page is None or total_pages is None or page <= total_pages
    if not listings and total and within_results:
        raise ParseError(f"results data counts {total} listings but holds none")
    return SearchResultsPage(tuple(listings), total, page, total_pages)


def _total_pages(total: int | None, *, stated: int | None, per_page: int | None) -> int | None:
    if stated is not None and stated >= 0:
        return stated
    if total is None:
        return None
    return math.ceil(total / (per_page if per_page and per_page > 0 else RESULTS_PER_PAGE))


def _cards_by_listing_id(tree: LexborHTMLParser) -> dict[str, LexborNode]:
    cards: dict[str, LexborNode] = {}
    for card in tree.css(_CARD_SELECTOR):
        listing_id = _text_value(card.attributes.get("data-listing-id"))
        if listing_id is not None:
            cards.setdefault(listing_id, card)
    return cards


def _listing_from_2026_result(entry: JsonObject, base_url: str) -> ScrapedListing | None:
    """One entry of the 2026 results blob; None for entries that are not listings (ads)."""
    vehicle = dict(_vehicle_json_of_2026_result(entry))
    listing_id = _text_value(_pick(entry, "listing_id")) or _text_value(
        _pick(vehicle, "listing_id")
    )
    if listing_id is None:
        return None
    vehicle["listing_id"] = listing_id
    signals = _signals_from_2026_result(entry)
    return _merge_listings(
        _listing_from_vehicle_json(vehicle), _listing_from_signals(listing_id, signals, base_url)
    )


def _vehicle_json_of_2026_result(entry: JsonObject) -> JsonObject:
    # The vehicle's fields ride along as HTML-escaped JSON in the analytics payloads.
    payloads = [_pick(_as_mapping(_pick(entry, "analytics")), "context")]
    payloads += [
        _pick(_as_mapping(interaction), "payload")
        for interaction in _as_list(_pick(entry, "on_view_interactions"))
    ]
    for payload in payloads:
        if not isinstance(payload, str):
            continue
        vehicle = _as_mapping(_try_load_json(html_entities.unescape(payload)))
        if _pick(vehicle, "listing_id", "vin") is not None:
            return vehicle
    return {}


# Result cards


@dataclass(frozen=True, slots=True)
class _CardSignals:
    """What a 2026 result card shows outside its vehicle JSON."""

    title: str | None = None
    price_text: str | None = None
    mileage_text: str | None = None
    price_drop: bool = False
    seller_label: str | None = None
    rating_text: str | None = None
    location: str | None = None
    image_sources: tuple[str, ...] = ()


def _single_card_listing(tree: LexborHTMLParser, html: str, base_url: str) -> ScrapedListing:
    cards = tree.css(_CARD_SELECTOR)
    if len(cards) != 1:
        raise ParseError(f"expected one listing card, found {len(cards)}")
    # The HTML parser closes a cut-off element silently; the raw text tells.
    if f"</{cards[0].tag}" not in html.lower():
        raise ParseError("listing card is truncated")
    return _listing_from_card(cards[0], base_url)


def _listing_from_card(card: LexborNode, base_url: str) -> ScrapedListing:
    if "data-vehicle-details" in card.attributes:
        return _listing_from_fuse_card(card, base_url)
    return _listing_from_spark_card(card, base_url)


def _listing_from_fuse_card(card: LexborNode, base_url: str) -> ScrapedListing:
    raw_details = card.attributes.get("data-vehicle-details") or ""
    vehicle = dict(_as_mapping(_load_json(raw_details, "card data-vehicle-details")))
    listing_id = _text_value(card.attributes.get("data-listing-id"))
    if listing_id is not None:
        vehicle["listing_id"] = listing_id
    listing = _listing_from_vehicle_json(vehicle)
    signals = _signals_from_fuse_card(card)
    return _merge_listings(
        listing, _listing_from_signals(listing.source_listing_id, signals, base_url)
    )


def _signals_from_fuse_card(card: LexborNode) -> _CardSignals:
    location = None
    for datum in card.css(".datum-icon"):
        icon = datum.css_first("fuse-svg[label], spark-svg[label]")
        if icon is not None and icon.attributes.get("label") == "Listing location":
            location = _node_text(datum.css_first("span"))
    return _CardSignals(
        title=_node_text(card.css_first("h2")),
        price_text=_node_text(card.css_first(".fuse-body-larger")),
        mileage_text=_node_text(card.css_first(".datum-icon.mileage span")),
        price_drop=card.css_first(".datum-icon.price-drop, .price-drop") is not None,
        seller_label=_node_text(card.css_first("span.fuse-body-small")),
        rating_text=_node_text(card.css_first(".datum-icon.review-star span")),
        location=location,
        image_sources=_attribute_values(card.css("card-gallery img"), "src"),
    )


def _signals_from_2026_result(entry: JsonObject) -> _CardSignals:
    elements = [
        *_ui_elements(_pick(entry, "body")),
        *_ui_elements(_pick(entry, "footer")),
    ]
    datums = {
        (_text_value(_pick(element, "name")) or "").lower(): element
        for element in elements
        if _pick(element, "__typename") == "DatumIcon"
    }
    texts = [element for element in elements if _pick(element, "__typename") == "Text"]
    gallery = _as_mapping(_pick(entry, "gallery"))
    return _CardSignals(
        title=next((_ui_text(t) for t in texts if _pick(t, "heading_level")), None),
        price_text=next((_ui_text(t) for t in texts if (_ui_text(t) or "").startswith("$")), None),
        mileage_text=_text_value(_pick(datums.get("mileage", {}), "value")),
        price_drop="price drop" in datums,
        seller_label=next((_ui_text(t) for t in texts if _ui_text_style(t) == "small"), None),
        rating_text=_text_value(_pick(datums.get("review rating", {}), "value")),
        location=_text_value(_pick(datums.get("listing location", {}), "value")),
        image_sources=tuple(
            url
            for image in _as_list(_pick(gallery, "images"))
            if (url := _text_value(_pick(_as_mapping(image), "url"))) is not None
        ),
    )


def _ui_elements(node: object) -> Iterator[JsonObject]:
    """The leaf elements of a 2026 server-driven UI tree, walking down through stacks."""
    for item in node if isinstance(node, list) else [node]:
        element = _as_mapping(item)
        if not element:
            continue
        if _pick(element, "__typename") in (None, "Stack"):
            yield from _ui_elements(_pick(element, "items"))
        else:
            yield element


def _ui_text(element: JsonObject) -> str | None:
    snippets = [_as_mapping(s) for s in _as_list(_pick(element, "text_snippets"))]
    return _text_value(" ".join(str(_pick(s, "text") or "") for s in snippets))


def _ui_text_style(element: JsonObject) -> str | None:
    snippets = _as_list(_pick(element, "text_snippets"))
    return _text_value(_pick(_as_mapping(snippets[0]), "text_style")) if snippets else None


def _listing_from_signals(listing_id: str, signals: _CardSignals, base_url: str) -> ScrapedListing:
    label = signals.seller_label or ""
    private_seller = label.lower().startswith("private seller")
    dealer = None
    if not private_seller:
        city, state = _city_state(signals.location)
        dealer = _dealer_or_none(
            ScrapedDealer(
                name=signals.seller_label,
                city=city,
                state=state,
                rating=_rating_value(signals.rating_text),
            )
        )
    return ScrapedListing(
        source=SOURCE,
        source_listing_id=listing_id,
        url=_canonical_url(listing_id),
        price=_positive(_int_value(signals.price_text)),
        mileage=_int_value(signals.mileage_text),
        year=_year_from_title(signals.title),
        condition=_condition_from_label(signals.title),
        images=_absolute_urls(signals.image_sources, base_url),
        price_drop=signals.price_drop,
        dealer=dealer,
        private_seller=private_seller,
    )


def _listing_from_spark_card(card: LexborNode, base_url: str) -> ScrapedListing:
    """A 2025 result card: no JSON of its own, but data attributes and text."""
    listing_id = _text_value(card.attributes.get("data-listing-id"))
    if listing_id is None:
        raise ParseError("result card has no data-listing-id")
    # The lead and call buttons carry the car's make, model, trim, year and VIN.
    car = card.css_first("[data-make]")
    phone_button = card.css_first("[data-phone-number]")
    title = _node_text(card.css_first("h2.title, h2"))
    private_seller = card.css_first(".private-seller") is not None
    return ScrapedListing(
        source=SOURCE,
        source_listing_id=listing_id,
        url=_canonical_url(listing_id),
        vin=_attribute_text(card.css_first("[data-vin]"), "data-vin"),
        price=_positive(_int_value(_node_text(card.css_first(".primary-price")))),
        mileage=_int_value(_node_text(card.css_first(".mileage"))),
        year=_int_value(_attribute_text(phone_button, "data-year")) or _year_from_title(title),
        make=_attribute_text(car, "data-make"),
        model=_attribute_text(car, "data-model"),
        trim=_attribute_text(phone_button, "data-trim"),
        condition=_condition_from_label(_node_text(card.css_first(".stock-type"))),
        images=_absolute_urls(_attribute_values(card.css("img.vehicle-image"), "src"), base_url),
        price_drop=card.css_first(".price-drop") is not None,
        dealer=None if private_seller else _dealer_from_spark_card(card),
        private_seller=private_seller,
    )


def _dealer_from_spark_card(card: LexborNode) -> ScrapedDealer | None:
    box = card.css_first(".vehicle-dealer")
    if box is None:
        return None
    rating = box.css_first("spark-rating")
    city, state = _city_state(_node_text(box.css_first(".miles-from")))
    return _dealer_or_none(
        ScrapedDealer(
            source_dealer_id=_attribute_text(
                card.css_first("[data-dealer-customer-id]"), "data-dealer-customer-id"
            ),
            name=_node_text(box.css_first(".dealer-name")),
            city=city,
            state=state,
            phone=_attribute_text(card.css_first("[data-phone-number]"), "data-phone-number"),
            rating=_rating_value(_attribute_text(rating, "rating")),
            review_count=_review_count(_node_text(rating)),
        )
    )


# Detail pages


def _detail_from_tree(tree: LexborHTMLParser, html: str, url: str | None) -> ScrapedListing:
    base_url = url or DEFAULT_BASE_URL
    activity = _as_mapping(_script_json(tree, "initial-activity-data"))
    controller: JsonObject = {}
    for script_id in _DETAIL_CONTROLLER_SCRIPTS:
        controller = _as_mapping(_script_json(tree, script_id))
        if controller:
            break
    listing_id = (
        _text_value(_pick(activity, "listing_id"))
        or _listing_id_from_url(_page_url(tree))
        or _listing_id_from_url(url)
    )
    if listing_id is None:
        raise _missing_data_error(tree, html, "detail page has no listing id")
    from_page = _listing_from_detail_markup(tree, listing_id, base_url)
    if not activity and from_page.vin is None and from_page.price is None:
        raise _missing_data_error(tree, html, "detail page has no vehicle data")
    # The controller's seller id is the one results pages use, so it goes first.
    return _merge_listings(
        _listing_from_detail_controller(controller, listing_id),
        _listing_from_vehicle_json({**activity, "listing_id": listing_id}),
        from_page,
    )


def _listing_from_detail_controller(controller: JsonObject, listing_id: str) -> ScrapedListing:
    call_source = _as_mapping(_pick(controller, "call_source_dni_metadata"))
    dimensions = _as_mapping(_pick(call_source, "dimensions"))
    seller = _as_mapping(_pick(call_source, "seller"))
    dealer = ScrapedDealer(
        source_dealer_id=_text_value(_pick(seller, "id")),
        zip=_text_value(_pick(seller, "zipcode", "zip")),
        phone=_text_value(_pick(seller, "phone_number")),
        rating=_rating_value(_lead_form_rating(controller)),
    )
    return ScrapedListing(
        source=SOURCE,
        source_listing_id=listing_id,
        url=_canonical_url(listing_id),
        vin=_first_text(_pick(dimensions, "vin")),
        exterior_color=_first_text(_pick(dimensions, "ext_color")),
        interior_color=_first_text(_pick(dimensions, "int_color")),
        drivetrain=_first_text(_pick(dimensions, "drv_trn_id")),
        fuel_type=_first_text(_pick(dimensions, "fuel_type_id")),
        transmission=_first_text(_pick(dimensions, "trans_type_id")),
        body_style=_first_text(_pick(dimensions, "body_style")),
        features=_unique_texts(_as_list(_pick(dimensions, "norm_feature_id"))),
        dealer=_dealer_or_none(dealer),
    )


def _lead_form_rating(controller: JsonObject) -> object:
    lead_form = _as_mapping(_pick(controller, "lead_form"))
    for element in _ui_elements(_pick(lead_form, "elements")):
        if _pick(element, "__typename") == "Rating":
            return _pick(element, "rating")
    return None


def _listing_from_detail_markup(
    tree: LexborHTMLParser, listing_id: str, base_url: str
) -> ScrapedListing:
    basics = _detail_basics(tree)
    mpg_city, mpg_highway = _mpg(basics.get("mpg"))
    title = _node_text(tree.css_first("h1#vehicle-title, h1.listing-title, h1"))
    specs_subtitle = _node_text(tree.css_first("section#features-and-specs .subtitle")) or ""
    vin_match = _VIN_IN_TEXT_RE.search(specs_subtitle)
    mileage_text = basics.get("mileage") or _node_text(
        tree.css_first(".listing-mileage, #sticky-header .mileage")
    )
    return ScrapedListing(
        source=SOURCE,
        source_listing_id=listing_id,
        url=_canonical_url(listing_id),
        vin=basics.get("vin") or (vin_match.group(1) if vin_match else None),
        price=_positive(_int_value(_node_text(tree.css_first(".list-price, .primary-price")))),
        mileage=_int_value(mileage_text),
        year=_year_from_title(title),
        condition=_condition_from_label(title)
        or _condition_from_label(_node_text(tree.css_first("p.new-used"))),
        exterior_color=basics.get("exterior_color"),
        interior_color=basics.get("interior_color"),
        drivetrain=basics.get("drivetrain"),
        fuel_type=basics.get("fuel_type"),
        transmission=basics.get("transmission"),
        engine=basics.get("engine"),
        mpg_city=mpg_city,
        mpg_highway=mpg_highway,
        images=_detail_images(tree, base_url),
        features=_unique_texts(
            _node_text(item)
            for item in tree.css(
                'section#features-and-specs li[data-qa="spec-value"], '
                "section.features-section ul.vehicle-features-list li"
            )
        ),
        description=_detail_description(tree),
        dealer=_dealer_from_detail_markup(tree),
    )


def _detail_basics(tree: LexborHTMLParser) -> dict[str, str]:
    basics: dict[str, str] = {}
    for entry in tree.css('li[data-qa="basics-entry"]'):
        sentence = _node_text(entry) or ""
        for suffix, key in _BASICS_SENTENCE_SUFFIXES:
            if sentence.lower().endswith(" " + suffix):
                basics.setdefault(key, sentence[: -len(suffix)].strip())
                break
    for description_list in tree.css("section.basics-section dl"):
        label: str | None = None
        for child in description_list.iter():
            if child.tag == "dt":
                label = (_node_text(child) or "").lower()
            elif child.tag == "dd" and label in _BASICS_LABELS:
                value = _node_text(child)
                if value is not None:
                    basics.setdefault(_BASICS_LABELS[label], value)
                label = None
    return basics


def _detail_images(tree: LexborHTMLParser, base_url: str) -> tuple[str, ...]:
    images = tree.css(
        'fuse-gallery-grid img[slot="image"], vdp-gallery gallery-slides img.swipe-main-image'
    )
    return _absolute_urls(_attribute_values(images, "src"), base_url)


def _detail_description(tree: LexborHTMLParser) -> str | None:
    for notes in tree.css(
        "section#sellers-notes cars-line-clamp, section.seller-notes div.sellers-notes"
    ):
        lines = (" ".join(line.split()) for line in notes.text().splitlines())
        description = "\n".join(line for line in lines if line)
        if description:
            return description
    return None


def _dealer_from_detail_markup(tree: LexborHTMLParser) -> ScrapedDealer | None:
    section = tree.css_first("section#dealers-info")
    if section is None:
        return None
    rating = section.css_first(".rating-stack fuse-rating, fuse-rating")
    street, city, state, zip_code = _split_address(_node_text(section.css_first(".map-link a")))
    return _dealer_or_none(
        ScrapedDealer(
            name=_node_text(section.css_first(".dealer-info h3, h3")),
            address=street,
            city=city,
            state=state,
            zip=zip_code,
            rating=_rating_value(_attribute_text(rating, "rating")),
            review_count=_review_count(_node_text(rating)),
            website=_without_tracking(_attribute_text(section.css_first(".website a"), "href")),
        )
    )


# Vehicle JSON (results blobs, card data, detail activity data)


def _listing_from_vehicle_json(vehicle: JsonObject) -> ScrapedListing:
    listing_id = _text_value(_pick(vehicle, "listing_id"))
    if listing_id is None:
        raise ParseError("vehicle data has no listing id")
    private_seller = _is_private_seller(vehicle)
    certified = any(
        _bool_value(_pick(vehicle, key))
        for key in ("cpo_indicator", "certified_preowned", "certified")
    )
    return ScrapedListing(
        source=SOURCE,
        source_listing_id=listing_id,
        url=_canonical_url(listing_id),
        vin=_text_value(_pick(vehicle, "vin")),
        price=_positive(_int_value(_pick(vehicle, "price"))),
        mileage=_int_value(_pick(vehicle, "mileage")),
        year=_int_value(_pick(vehicle, "year", "model_year")),
        make=_text_value(_pick(vehicle, "make")),
        model=_text_value(_pick(vehicle, "model")),
        trim=_text_value(_pick(vehicle, "trim")),
        condition="cpo"
        if certified
        else _condition_from_label(_text_value(_pick(vehicle, "stock_type"))),
        exterior_color=_text_value(_pick(vehicle, "exterior_color")),
        interior_color=_text_value(_pick(vehicle, "interior_color")),
        drivetrain=_text_value(_pick(vehicle, "drivetrain")),
        fuel_type=_text_value(_pick(vehicle, "fuel_type")),
        transmission=_text_value(_pick(vehicle, "transmission")),
        body_style=_text_value(_pick(vehicle, "body_style", "bodystyle")),
        price_drop=any(
            (_text_value(badge) or "").startswith("price_drop")
            for badge in _as_list(_pick(vehicle, "badges"))
        ),
        msrp=_positive(_int_value(_pick(vehicle, "msrp"))),
        dealer=None if private_seller else _dealer_from_vehicle_json(vehicle),
        private_seller=private_seller,
    )


def _is_private_seller(vehicle: JsonObject) -> bool:
    seller_type = _text_value(_pick(vehicle, "seller_type"))
    if seller_type is not None:
        return "private" in seller_type.lower()
    seller = _as_mapping(_pick(vehicle, "seller"))
    # 2026 cards name private sellers by a seller id and dealers by a customer id.
    has_seller_id = (
        _pick(seller, "seller_id") is not None or _pick(vehicle, "seller_id") is not None
    )
    has_customer_id = (
        _pick(seller, "customer_id") is not None or _pick(vehicle, "customer_id") is not None
    )
    return has_seller_id and not has_customer_id


def _dealer_from_vehicle_json(vehicle: JsonObject) -> ScrapedDealer | None:
    seller = _as_mapping(_pick(vehicle, "seller"))
    return _dealer_or_none(
        ScrapedDealer(
            source_dealer_id=_text_value(_pick(seller, "customer_id"))
            or _text_value(_pick(vehicle, "customer_id")),
            name=_text_value(_pick(vehicle, "dealer_name")),
            zip=_text_value(_pick(seller, "zip")) or _text_value(_pick(vehicle, "dealer_zip")),
        )
    )


# Merging partial records


def _merge_listings(primary: ScrapedListing, *fallbacks: ScrapedListing) -> ScrapedListing:
    """`primary`, its gaps filled from each fallback in turn; flags are or-ed."""
    merged = primary
    for fallback in fallbacks:
        updates: dict[str, Any] = {}
        for field in fields(ScrapedListing):
            mine = getattr(merged, field.name)
            theirs = getattr(fallback, field.name)
            if field.name == "dealer":
                updates[field.name] = _merge_dealers(mine, theirs)
            elif isinstance(mine, bool):
                updates[field.name] = mine or theirs
            elif mine is None or mine == ():
                updates[field.name] = theirs
        merged = replace(merged, **updates)
    if merged.private_seller and merged.dealer is not None:
        merged = replace(merged, dealer=None)
    return merged


def _merge_dealers(
    primary: ScrapedDealer | None, fallback: ScrapedDealer | None
) -> ScrapedDealer | None:
    if primary is None or fallback is None:
        return primary or fallback
    updates: dict[str, Any] = {
        field.name: getattr(fallback, field.name)
        for field in fields(ScrapedDealer)
        if getattr(primary, field.name) is None
    }
    return replace(primary, **updates)


def _dealer_or_none(dealer: ScrapedDealer) -> ScrapedDealer | None:
    if all(getattr(dealer, field.name) is None for field in fields(ScrapedDealer)):
        return None
    return dealer


# Small readers


def _script_json(tree: LexborHTMLParser, script_id: str) -> object | None:
    script = tree.css_first(f'script[id="{script_id}"]')
    if script is None:
        return None
    return _load_json(script.text(), f"script#{script_id}")


def _load_json(text: str, what: str) -> object:
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError as error:
        raise ParseError(f"{what} is not valid JSON ({error.msg}: char {error.pos})") from error
    return value


def _try_load_json(text: str) -> object | None:
    try:
        value: object = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value


def _as_mapping(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _pick(data: JsonObject, *names: str) -> object:
    """The first present value among `names`, each tried in snake_case and camelCase.

    The site moved its keys from snake_case to camelCase over time. Empty strings count
    as absent.
    """
    for name in names:
        for key in (name, _camel_case(name)):
            value = data.get(key)
            if value is not None and value != "":
                return value
    return None


def _camel_case(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _text_value(value: object) -> str | None:
    """A JSON value as trimmed text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        return None
    # JSON strings can carry HTML entities ("Driver&#39;s Village").
    return _clean_text(html_entities.unescape(value))


def _clean_text(text: str | None) -> str | None:
    """`text` trimmed, inner runs of whitespace made single spaces; None when empty."""
    cleaned = " ".join((text or "").split())
    return cleaned or None


def _first_text(value: object) -> str | None:
    if isinstance(value, list):
        return next((text for item in value if (text := _text_value(item))), None)
    return _text_value(value)


def _unique_texts(values: Iterable[object]) -> tuple[str, ...]:
    texts = (_text_value(value) for value in values)
    return tuple(dict.fromkeys(text for text in texts if text is not None))


def _int_value(value: object) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        match = _NUMBER_RE.fullmatch(value.strip())
        return int(match.group(1).replace(",", "")) if match else None
    return None


def _positive(number: int | None) -> int | None:
    """Prices and MSRPs of 0 mean "not given"."""
    return number if number is not None and number > 0 else None


def _rating_value(value: object) -> float | None:
    """A star rating; 0 is how an unrated dealer is drawn."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        rating = float(value)
    elif isinstance(value, str):
        try:
            rating = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return rating if math.isfinite(rating) and rating > 0 else None


def _bool_value(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return value is True


def _condition_from_label(label: str | None) -> ListingCondition | None:
    """Condition from a stock type ("Used") or a title's first word ("Certified 2024 ...")."""
    words = (label or "").split()
    first_word = words[0].lower() if words else ""
    if first_word in ("certified", "cpo"):
        return "cpo"
    if first_word == "new":
        return "new"
    if first_word in ("used", "pre-owned", "preowned"):
        return "used"
    return None


def _year_from_title(title: str | None) -> int | None:
    match = _YEAR_RE.search(title or "")
    return int(match.group(1)) if match else None


def _mpg(text: str | None) -> tuple[int | None, int | None]:
    match = _MPG_RE.search(text or "")
    if match is None:
        return None, None
    return int(match.group(1)), int(match.group(2))


def _city_state(location: str | None) -> tuple[str | None, str | None]:
    match = _CITY_STATE_RE.match(location or "")
    if match is None:
        return None, None
    return match.group("city"), match.group("state")


def _split_address(
    address: str | None,
) -> tuple[str | None, str | None, str | None, str | None]:
    if address is None:
        return None, None, None, None
    match = _ADDRESS_RE.match(address)
    if match is None:
        return address, None, None, None
    return match.group("street"), match.group("city"), match.group("state"), match.group("zip")


def _review_count(text: str | None) -> int | None:
    match = _REVIEW_COUNT_RE.search(text or "")
    return int(match.group(1).replace(",", "")) if match else None


def _canonical_url(listing_id: str) -> str:
    return _CANONICAL_LISTING_URL.format(quote(listing_id, safe=""))


def _listing_id_from_url(url: str | None) -> str | None:
    match = _LISTING_ID_IN_URL_RE.search(url or "")
    return match.group(1) if match else None


def _absolute_urls(sources: Iterable[str], base_url: str) -> tuple[str, ...]:
    urls = (_absolute_url(source, base_url) for source in sources)
    return tuple(dict.fromkeys(url for url in urls if url is not None))


def _absolute_url(source: str, base_url: str) -> str | None:
    source = source.strip()
    if source.startswith(("https://", "http://")):
        return source
    if source.startswith("//"):
        return "https:" + source
    if source.startswith("/"):
        return urljoin(base_url, source)
    # Other relative paths only appear in pages saved from a browser, pointing at local files.
    return None


def _without_tracking(url: str | None) -> str | None:
    """A dealer's website without the utm_ parameters cars.com appends to it."""
    if url is None:
        return None
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _node_text(node: LexborNode | None) -> str | None:
    return _clean_text(node.text(separator=" ")) if node is not None else None


def _attribute_text(node: LexborNode | None, name: str) -> str | None:
    # The HTML parser has already decoded entities in attribute values.
    return _clean_text(node.attributes.get(name)) if node is not None else None


def _attribute_values(nodes: Iterable[LexborNode], name: str) -> tuple[str, ...]:
    return tuple(value for node in nodes if (value := node.attributes.get(name)))
