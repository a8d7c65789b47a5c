"""A shopper's plain words in, search filters out: the chat's local assistant.

No network and no model: patterns for numbers (price, mileage, years, ZIP and radius),
word tables for the vocabularies, and the catalog for makes and models. Odd text never
raises; what is not understood is left out, and `Understanding.filters` always validates.

Choices a shopper could see:

- **Makes and models** come from the catalog's own matching (case, spaces, hyphens,
  aliases such as "chevy", "vw", "crv"), then plurals ("hondas"), then a fuzzy fallback:
  optimal-string-alignment distance (a swap of two letters counts one) of at most 1 for
  words of 4-7 letters and 2 for 8 or more, only against make names and aliases and the
  models of a make already named, only for candidates that start with the same letter,
  and never for the common words of `FUZZY_EXCLUDED` ("under", "miles", "cheap", "quick",
  "keep", "range"...).
- **A model alone** names its make when only one make has it ("camry": Toyota). A model
  that is only digits ("300", "911"), only one or two letters ("is", "z") or a common
  word ("fit", "edge", "escape") counts only right after its make ("honda fit"). A model
  after "in"/"near"/"from" is a place ("in tucson").
- **Prices** below 1,000 without a dollar sign are thousands ("under 25", "15-25k"); a
  bare "$20,000" or "20k" is a ceiling; "around 20k" is +/-10%. "cheap" caps the price at
  `CHEAP_PRICE_MAX` ($20,000), a budget car, unless a price is given.
- **Mileage**: "low miles" is at most `LOW_MILEAGE_MAX` (50,000). A small number of miles
  (below 1,000, "30 mi", "under 30 miles") is a radius, not an odometer reading.
- **Years**: "newer than 2018" and "after 2017" exclude the year named, "from 2016" and
  "2018+" include it; a lone year is that model year only.
- **Location**: "near", "in", "zip", "around", "about" + five digits ("around" a round
  thousand, "around 34000", is a price though a ZIP too). A five-digit number after
  "near", "in" or "zip" that is no real ZIP is reported in `unknown_zip`, and no ZIP is
  filled in for it. The radius is capped at 500 miles; with a ZIP alone it is the search
  default (50).
- **Follow-ups**: with a `previous` search that filters anything, a message is a follow-up
  unless it names a make or model without a follow-up cue ("what about", "also", "only",
  "instead"...) or says "start over" / "new search". A follow-up keeps the previous
  filters and changes what it names: a new make or model replaces both make and model; a
  listed value replaces that field's values unless the message says "also"/"too"/"as
  well" (then it is added). "cheaper" is 90% of the previous price ceiling, or
  `CHEAP_PRICE_MAX` without one; "newer" is the previous oldest year + 2, or this year - 5;
  "lower miles" is 75% of the previous mileage ceiling, or 50,000. "any price"/"forget the
  price" clears a field (price, year, mileage, color, make, model, body style, fuel,
  drivetrain, transmission, condition, location).
- **Preferences** of a signed-in shopper fill only what the message and `previous` leave
  unset: ZIP from `home_zip`, radius from `radius`, price ceiling from `price_max`, and
  never a field the message cleared. `favorite_makes` and `body_styles` are never turned
  into filters: a preference is not a request, and would hide every other car.
- **Free text** (`q`): only when the message names no make and no model, the words left
  over that mean something ("red convertible with sunroof" searches "sunroof"); chatter
  ("show me", "please", "cars") is dropped. With a make or model the leftovers are more
  likely typos or chatter, which would only narrow the search.
- Only the first `MAX_MESSAGE_CHARS` characters of a message are read.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from pydantic import ValidationError

from carsearch.dealers.geo import zip_centroid
from carsearch.ingest.normalize import COMMON_MAKE_ALIASES, Catalog, match_key
from carsearch.listings.vocab import (
    BodyStyle,
    Color,
    Condition,
    DealRating,
    Drivetrain,
    FuelType,
    Transmission,
)
from carsearch.search.schemas import DEFAULT_RADIUS_MILES, MAX_RADIUS_MILES, SearchFilters
from carsearch.seed.reference import load_reference

_T = TypeVar("_T")

MAX_MESSAGE_CHARS = 500
CHEAP_PRICE_MAX = 20_000
LOW_MILEAGE_MAX = 50_000
CHEAPER_FACTOR = 0.9
LOWER_MILES_FACTOR = 0.75
NEWER_STEP_YEARS = 2
NEWER_DEFAULT_AGE_YEARS = 5
AROUND_SPREAD = 0.10
MAX_Q_CHARS = 200
MIN_YEAR = 1981
MAX_YEAR = 2100
MAX_PRICE = 10_000_000
MAX_MILEAGE = 2_000_000


@dataclass(frozen=True, slots=True)
class Understanding:
    """What a message asks for.

    `recognized` names, for the answer text, what this message (and the preferences)
    contributed; `follow_up` tells that `previous` was adjusted rather than replaced;
    `unknown_zip` is a five-digit number given as a place that is no real ZIP.
    """

    filters: SearchFilters
    recognized: tuple[str, ...] = ()
    follow_up: bool = False
    unknown_zip: str | None = None


def understand(
    message: str,
    catalog: Catalog,
    *,
    previous: SearchFilters | None = None,
    preferences: Mapping[str, Any] | None = None,
    current_year: int | None = None,
) -> Understanding:
    """The search filters `message` asks for; `current_year` (default: today's) anchors
    "newer" without a previous oldest year."""
    year = current_year or date.today().year
    heard = _Listener(catalog, year).listen(message if isinstance(message, str) else "")
    # An empty previous search has nothing to adjust.
    previous_data = _filters_data(previous) if previous is not None else {}
    follow_up = (
        bool(previous_data) and not heard.reset and (heard.cue or not (heard.makes or heard.models))
    )
    base = previous_data if follow_up else {}
    carried_zip = base.get("zip") is not None
    data, recognized = _apply(heard, base, follow_up=follow_up, current_year=year)
    _apply_preferences(
        data,
        preferences or {},
        heard,
        recognized,
        radius_given=heard.radius is not None or carried_zip,
    )
    return Understanding(
        filters=_valid_filters(data),
        recognized=tuple(recognized),
        follow_up=follow_up,
        unknown_zip=heard.unknown_zip,
    )


# What a message says, before it meets the previous filters


@dataclass
class _Heard:
    makes: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    values: dict[str, list[StrEnum]] = field(default_factory=dict)
    year_min: int | None = None
    year_max: int | None = None
    price_min: int | None = None
    price_max: int | None = None
    mileage_max: int | None = None
    zip: str | None = None
    radius: int | None = None
    unknown_zip: str | None = None
    cleared: list[str] = field(default_factory=list)
    reset: bool = False
    cue: bool = False
    union: bool = False
    cheap: bool = False
    cheaper: bool = False
    newer: bool = False
    fewer_miles: bool = False
    words: list[str] = field(default_factory=list)

    def add_value(self, name: str, value: StrEnum) -> None:
        values = self.values.setdefault(name, [])
        if value not in values:
            values.append(value)


# Numbers. Amounts: "25000", "25,000", "$25k", "22.5k", "20 grand", "15 thousand dollars".

_NUM = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


def _found(pattern: re.Pattern[str], text: str) -> tuple[bool, str]:
    """Whether `pattern` occurs in `text`, and the text with its occurrences taken out."""
    taken, count = pattern.subn(" | ", text)
    return count > 0, taken


def _amount(name: str) -> str:
    return (
        rf"(?<![\w$.,])(?P<{name}_usd>\$\s?)?(?P<{name}>{_NUM})"
        rf"(?:\s?(?P<{name}_k>k|grand|thousand)(?!\w))?"
        rf"(?P<{name}_cur>\s?(?:dollars|bucks|usd)(?!\w))?(?![\w])"
    )


def _year(name: str) -> str:
    return rf"(?<![\w$.,])(?P<{name}>(?:19|20)[0-9]{{2}})(?![\w]|,[0-9])"


_MILES = r"(?:mi|mile|miles|mileage|milage)\b"
_RADIUS_MILES = r"(?:mi|mile|miles)\b"
_ZIP = r"(?P<zip>[0-9]{5})(?![\w])(?:-[0-9]{4}(?![\w]))?"
_AT_MOST_WORDS = (
    r"under|below|less\s+than|fewer\s+than|lower\s+than|no\s+more\s+than|not\s+more\s+than"
    r"|not\s+over|at\s+most|max(?:imum)?(?:\s+of)?|up\s*to"
)
_AT_MOST = rf"(?:\b(?:{_AT_MOST_WORDS})|<=?)"
_PRICE_AT_MOST = (
    rf"(?:\b(?:{_AT_MOST_WORDS}|cheaper\s+than|less\s+expensive\s+than"
    r"|budget(?:\s+(?:of|is|at|around))?|my\s+budget\s+is|for\s+under|for\s+less\s+than"
    r"|spend(?:ing)?(?:\s+(?:up\s*to|at\s+most))?|max(?:imum)?\s+(?:price|budget)(?:\s+of)?"
    r"|price\s+(?:cap|limit)(?:\s+of)?|afford)|<=?)"
)
_AT_LEAST = (
    r"(?:\b(?:over|above|more\s+than|at\s+least|min(?:imum)?(?:\s+(?:of|price))?"
    r"|starting\s+at|from|north\s+of|greater\s+than|higher\s+than|no\s+less\s+than"
    r"|not\s+less\s+than)|>=?)"
)
_AROUND = r"(?:\b(?:around|about|approximately|approx|roughly|close\s+to|near|ballpark)|~)"
# After these, a small bare number counts things, not dollars ("at least 7 seats").
_NOT_MONEY = _word_set(
    "seat seats seater seaters passenger passengers people person persons door doors "
    "cylinder cylinders cyl speed speeds row rows mpg hp horsepower year years yr yrs "
    "owner owners day days week weeks month months kid kids inch inches wheel wheels "
    "liter liters litre litres l percent minute minutes hour hours"
)

_RESET = re.compile(
    r"\b(?:start(?:ing)?\s+(?:over|again|fresh|from\s+scratch)|new\s+search|reset"
    r"|from\s+scratch|clear\s+(?:all|everything|(?:the\s+|my\s+)?filters))\b"
)
_CLEARABLE: Mapping[str, tuple[str, ...]] = {
    "price": ("price_min", "price_max"),
    "year": ("year_min", "year_max"),
    "mileage": ("mileage_max",),
    "color": ("exterior_color", "interior_color"),
    "make": ("make", "model", "trim"),
    "model": ("model", "trim"),
    "body style": ("body_style",),
    "fuel": ("fuel_type",),
    "drivetrain": ("drivetrain",),
    "transmission": ("transmission",),
    "condition": ("condition",),
    "location": ("zip", "radius"),
}
_CLEAR_WORDS: Mapping[str, str] = {
    **dict.fromkeys(("price", "prices", "budget", "cost"), "price"),
    **dict.fromkeys(("year", "years", "age"), "year"),
    **dict.fromkeys(("mileage", "milage", "miles"), "mileage"),
    **dict.fromkeys(("color", "colors", "colour", "colours"), "color"),
    **dict.fromkeys(("make", "makes", "brand", "brands"), "make"),
    **dict.fromkeys(("model", "models"), "model"),
    **dict.fromkeys(("body style", "body type", "style", "type"), "body style"),
    **dict.fromkeys(("fuel", "fuel type"), "fuel"),
    **dict.fromkeys(("drivetrain", "drive train"), "drivetrain"),
    **dict.fromkeys(("transmission", "gearbox"), "transmission"),
    "condition": "condition",
    **dict.fromkeys(("location", "zip", "zip code", "distance", "radius"), "location"),
}
_CLEAR_FIELD = "|".join(
    sorted((w.replace(" ", r"\s+") for w in _CLEAR_WORDS), key=len, reverse=True)
)
_CLEAR = re.compile(
    r"\b(?:forget|ignore|drop|remove|clear|no|any|skip)\s+(?:about\s+)?"
    rf"(?:the\s+|my\s+|a\s+|any\s+)?(?P<field>{_CLEAR_FIELD})\b"
    rf"|\b(?P<field2>{_CLEAR_FIELD})\s+(?:doesn?t|does\s+not|dont|do\s+not)\s+matter\b"
)
_CUE_START = re.compile(
    r"^\W*(?:and|also|but|or|only|just|what\s+about|how\s+about|what\s+if|instead|same"
    r"|now|ok|okay|actually|then|maybe|make\s+(?:it|that|them)|try|plus|show\s+(?:me\s+)?"
    r"(?:only|just))\b"
)
_CUE_ANYWHERE = re.compile(r"\b(?:instead|as\s+well|also|too|only|same\s+but|rather)\b")
_UNION = re.compile(r"^\W*(?:and|or|plus)\b|\b(?:also|too|as\s+well|in\s+addition|either)\b")
_CHEAP = re.compile(
    r"\b(?:cheap|cheapest|inexpensive|affordable|bargain|budget|low[\s-]*(?:priced?|cost))\b"
)
_CHEAPER = re.compile(
    r"\b(?:cheaper|less\s+expensive|more\s+affordable|lower\s+(?:price|priced|prices|budget"
    r"|cost)|for\s+less)\b"
)
# Deals: priced under the estimated market value (docs/APPRAISAL.md). "Great deal" and "steal"
# ask for the best tier only; "good deal", "deal", "below market" for the two best.
_GREAT_DEAL = re.compile(r"\b(?:great|best|amazing|excellent)\s+deals?\b|\bsteals?\b")
_GOOD_DEAL = re.compile(
    r"\b(?:(?:good|real|hot|fair)\s+)?deals?\b|\b(?:below|under)\s+(?:the\s+)?market"
    r"(?:\s+value)?\b|\bunder[\s-]*priced\b"
)
_NEWER = re.compile(r"\b(?:newer|more\s+recent|later\s+(?:model|models|ones|years))\b")
_FEWER_MILES = re.compile(r"\b(?:lower|fewer|less|lesser|reduced)[\s-]*" + _MILES)
_LOW_MILES = re.compile(r"\blow[\s-]*" + _MILES)


# Words

_BODY_WORDS: Mapping[str, BodyStyle] = {
    **dict.fromkeys(
        ("suv", "suvs", "crossover", "crossovers", "cuv", "cuvs", "sport utility"), BodyStyle.suv
    ),
    **dict.fromkeys(("sedan", "sedans", "saloon"), BodyStyle.sedan),
    **dict.fromkeys(
        ("truck", "trucks", "pickup", "pickups", "pickup truck", "pickup trucks"),
        BodyStyle.pickup,
    ),
    **dict.fromkeys(("coupe", "coupes"), BodyStyle.coupe),
    **dict.fromkeys(
        ("convertible", "convertibles", "cabriolet", "cabrio", "drop top", "droptop"),
        BodyStyle.convertible,
    ),
    **dict.fromkeys(("hatchback", "hatchbacks", "hatch", "hatches"), BodyStyle.hatchback),
    **dict.fromkeys(("wagon", "wagons", "station wagon", "station wagons"), BodyStyle.wagon),
    **dict.fromkeys(("minivan", "minivans"), BodyStyle.minivan),
    **dict.fromkeys(("van", "vans"), BodyStyle.van),
}
_FUEL_WORDS: Mapping[str, FuelType] = {
    **dict.fromkeys(
        ("electric", "ev", "evs", "bev", "bevs", "battery electric", "all electric"),
        FuelType.electric,
    ),
    **dict.fromkeys(("hybrid", "hybrids", "hev"), FuelType.hybrid),
    **dict.fromkeys(
        (
            "plug in hybrid",
            "plug in hybrids",
            "plugin hybrid",
            "plugin hybrids",
            "plug in",
            "plugin",
            "phev",
            "phevs",
        ),
        FuelType.plug_in_hybrid,
    ),
    **dict.fromkeys(("diesel", "diesels", "tdi"), FuelType.diesel),
    **dict.fromkeys(("gas", "gasoline", "petrol", "gas powered"), FuelType.gasoline),
    **dict.fromkeys(
        ("flex fuel", "flexfuel", "flex fuel vehicle", "e85", "ffv"), FuelType.flex_fuel
    ),
}
_DRIVETRAIN_WORDS: Mapping[str, Drivetrain] = {
    **dict.fromkeys(
        ("awd", "all wheel drive", "all wheel", "allwheel", "4matic", "xdrive", "quattro"),
        Drivetrain.awd,
    ),
    **dict.fromkeys(
        ("4wd", "4x4", "4x4s", "four wheel drive", "four wheel", "4 wheel drive", "4 wheel"),
        Drivetrain.four_wd,
    ),
    **dict.fromkeys(("fwd", "front wheel drive", "front wheel"), Drivetrain.fwd),
    **dict.fromkeys(("rwd", "rear wheel drive", "rear wheel"), Drivetrain.rwd),
}
_TRANSMISSION_WORDS: Mapping[str, Transmission] = {
    **dict.fromkeys(
        ("manual", "manuals", "stick", "stick shift", "stickshift", "standard transmission"),
        Transmission.manual,
    ),
    **dict.fromkeys(("automatic", "automatics", "automatic transmission"), Transmission.automatic),
    **dict.fromkeys(("cvt",), Transmission.cvt),
}
_CONDITION_WORDS: Mapping[str, Condition] = {
    **dict.fromkeys(("new", "brand new"), Condition.new),
    **dict.fromkeys(("used", "preowned", "pre owned", "second hand", "secondhand"), Condition.used),
    **dict.fromkeys(
        (
            "certified",
            "cpo",
            "certified pre owned",
            "certified preowned",
            "certified used",
        ),
        Condition.cpo,
    ),
}
# Phrases that look like ours but say nothing we filter on.
_NOISE_PHRASES = (
    "gas mileage",
    "gas milage",
    "good on gas",
    "on gas",
    "new york",
    "new jersey",
    "new mexico",
    "new hampshire",
    "new orleans",
    "new england",
    "new zealand",
)
_PHRASES: Mapping[tuple[str, ...], tuple[str, StrEnum] | None] = {
    **{tuple(p.split()): ("body_style", v) for p, v in _BODY_WORDS.items()},
    **{tuple(p.split()): ("fuel_type", v) for p, v in _FUEL_WORDS.items()},
    **{tuple(p.split()): ("drivetrain", v) for p, v in _DRIVETRAIN_WORDS.items()},
    **{tuple(p.split()): ("transmission", v) for p, v in _TRANSMISSION_WORDS.items()},
    **{tuple(p.split()): ("condition", v) for p, v in _CONDITION_WORDS.items()},
    **{tuple(p.split()): None for p in _NOISE_PHRASES},
}
_LONGEST_PHRASE = max(len(p) for p in _PHRASES)
# Body and fuel words that may also belong to a model name ("camry hybrid", "civic
# hatchback"): they keep their own meaning when the model is the same without them.
_FREE_PHRASES = frozenset(tuple(p.split()) for p in (*_BODY_WORDS, *_FUEL_WORDS))

_COLOR_WORDS: Mapping[str, Color] = {
    **{color.value: color for color in Color if color is not Color.other},
    "grey": Color.gray,
    "charcoal": Color.gray,
    "navy": Color.blue,
    "maroon": Color.red,
    "burgundy": Color.red,
    "tan": Color.beige,
    "cream": Color.beige,
}
_INTERIOR_MARKERS = frozenset(
    {"interior", "interiors", "inside", "upholstery", "leather", "seats", "seat", "cabin"}
)
_EXTERIOR_MARKERS = frozenset({"exterior", "paint", "outside", "paintjob"})
_COLOR_CONNECTORS = frozenset(
    {"and", "or", "in", "is", "color", "colour", "colored", "coloured", "cloth", "suede", "nor"}
)
_PLACE_WORDS = frozenset({"in", "near", "around", "from", "at", "by", "to"})

# Chatter: never searched as text, never fuzzy-matched, no follow-up meaning.
STOPWORDS = _word_set(
    """
    a about above after again all also am an and any anything anywhere are around as at
    available be been below best between both but buy by can car cars could did do does doing dont
    each either else even ever find for from get give go going good got great has have
    having hello help hey hi how i id if im in into is it its ive just keep know like
    looking look lot lots make me might mine more most much must my need needs new next
    nice no nor not now of off ok okay on one ones only or other our out over please
    plus pls prefer preferably price prices priced purchase rather really right same
    search see seeking sell selling shop show so some something such than thank thanks
    that the their them then there these they thing things this those to too try under
    up us used vehicle vehicles very want wanted wants was we well were what whats when
    where which while who will wish with within without would yeah yes you your
    option options choice choices maybe kinda sort actually instead first thats theres
    isnt cant wont lets ill youre
    """
)
# Words of this module's own phrases, and of numbers' surroundings.
_GRAMMAR_WORDS = _word_set(
    """
    under below over above less more than max maximum min minimum least most budget cheap
    cheaper cheapest affordable inexpensive expensive bargain around about approximately
    approx roughly between within miles mile mileage milage odometer radius away near
    nearby newer older later earlier recent year years yr since after before from zip
    code zipcode postal low lower fewer lesser high higher certified forget ignore drop
    remove clear reset start starting search scratch thousand grand dollars bucks usd
    cost priced range model models make makes brand brands style type color colors colour
    interior exterior inside outside paint seats seat leather cabin upholstery drive
    wheel transmission fuel condition location distance matter doesnt north greater
    ones something tops cap limit spend spending afford
    """
)
# English words one typo away from a make, alias or model name: never corrected into one.
_NEAR_MISSES = _word_set(
    """
    accent accept accident accurate accuracy alas alga area aria ascend assent astral
    astray audio audit aura aural aver baker beeper beer belt bend bent bier blaze blazed
    bold bolts boat boot booster bout brick buck bulk bummer bunk cannon canon canton
    carry caper charge charged charges charity charter chef chem chew chewy civil clarify
    class clown coax colder compare compose compress continent converse cook cooker
    cooler cope copper coup couple craze crow crowd crude cube cure cute daft damn dare
    dark darn dirt discover dodge dodged dodgy dodger down drawn edged edger edges edgy
    elide elite else emir enjoy envy escaped escapes explore face fiord fjord flat flax
    flea fled flee flew flux fold fond food fora fore forge fork form fort forth forty
    frog from frond gold golfer goof gulf hammer hummed integral jeer jeez joke kick
    kinks lamb lambs lance lead leak lean leap lease leis limbo lighting loaf locus lots
    louts lurid lyric macaw mace macho marine maxim mere mercy metric metro mind minim
    mink mint minx modal model models modes motel noon optic optimal pacific pilots pivot
    plot porch pries prompt rapid range ranged ranges ranger rend rent real redo relax
    rely renal repay replay rider ringer roam roaster role roles roll rolls romp rouge
    sable sale scab senna shark sierra singer slab smarts soil solar soul sour soup spank
    spar spare spark stab stable stark start status style suburb swab tabs tags tans taps
    tray trap twos vice vile vine vise vole volts wagoner wrath yards yarns quick quack
    deep keep beep seep peep lodge hodge daddy candy paddy mine smart
    """
)
FUZZY_EXCLUDED = (
    STOPWORDS
    | _GRAMMAR_WORDS
    | _NEAR_MISSES
    | frozenset(w for phrase in _PHRASES for w in phrase)
    | frozenset(_COLOR_WORDS)
    | _INTERIOR_MARKERS
    | _EXTERIOR_MARKERS
)
# Model names that are everyday words: they name a model only right after its make.
_COMMON_MODEL_NAMES = _word_set(
    """
    accent air aspen aura azure caliber cc charger clarity cobalt continental convertible
    cooper coupe crown ct cube dart dawn edge element encore entourage envision es escape
    evolution express fit flex focus freestyle ghost golf gravity gs hardtop insight ion
    is ix journey kicks legacy liberty lightning ls matrix models neon outlook passport
    phantom pilot prologue pt quest rabbit regal relay rendezvous roadster sable sky soul
    spark terrain torrent transit tribute vantage venue vibe xv z fortwo fivehundred
    """
)
# Make names that are everyday words on their own ("a smart choice"): only with more
# words ("smart car", "smart fortwo") or a model.
_COMMON_MAKE_WORDS = frozenset({"smart"})
_MAX_NAME_WORDS = 4


class _Listener:
    def __init__(self, catalog: Catalog, current_year: int) -> None:
        self.catalog = catalog
        self.current_year = current_year
        self.heard = _Heard()

    def listen(self, message: str) -> _Heard:
        text = _normalize(message[:MAX_MESSAGE_CHARS])
        heard = self.heard
        heard.reset = _RESET.search(text) is not None
        text = _RESET.sub(" | ", text)
        heard.cue = bool(
            _CUE_START.search(text) or _CUE_ANYWHERE.search(text) or _CLEAR.search(text)
        )
        heard.union = _UNION.search(text) is not None
        text = _CLEAR.sub(self._clear, text)
        for pattern, handler in self._number_rules():
            text = pattern.sub(handler, text)
        text = self._relative_words(text)
        self._words(text)
        return heard

    # Controls and relative words

    def _clear(self, match: re.Match[str]) -> str:
        word = " ".join((match.group("field") or match.group("field2")).split())
        name = _CLEAR_WORDS[word]
        if name not in self.heard.cleared:
            self.heard.cleared.append(name)
        return " | "

    def _relative_words(self, text: str) -> str:
        heard = self.heard
        heard.cheaper, text = _found(_CHEAPER, text)
        heard.newer, text = _found(_NEWER, text)
        heard.fewer_miles, text = _found(_FEWER_MILES, text)
        heard.cue = heard.cue or heard.cheaper or heard.newer or heard.fewer_miles
        low_miles, text = _found(_LOW_MILES, text)
        if low_miles and heard.mileage_max is None:
            heard.mileage_max = LOW_MILEAGE_MAX
        heard.cheap, text = _found(_CHEAP, text)
        great_deal, text = _found(_GREAT_DEAL, text)
        good_deal, text = _found(_GOOD_DEAL, text)
        if great_deal or good_deal:
            heard.add_value("deal_rating", DealRating.great)
        if good_deal:
            heard.add_value("deal_rating", DealRating.good)
        return text

    # Numbers

    def _number_rules(self) -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
        a, b = _amount("a"), _amount("b")
        y1, y2 = _year("y1"), _year("y2")
        rules: list[tuple[str, Callable[[re.Match[str]], str]]] = [
            (
                rf"\bwithin\s*(?P<r>[0-9]{{1,5}})\s*-?\s*{_RADIUS_MILES}(?:\s*(?:radius|away))?"
                rf"(?:\s*(?:of|from|around|near|to)\s*{_ZIP})?",
                self._radius,
            ),
            (
                rf"(?<![\w$.,])(?P<r>[0-9]{{1,5}})\s*-?\s*{_RADIUS_MILES}\s*(?:radius|away)?\s*"
                rf"(?:of|from|around|near)\s*{_ZIP}",
                self._radius,
            ),
            (
                rf"(?<![\w$.,])(?P<r>[0-9]{{1,5}})\s*-?\s*{_RADIUS_MILES}\s*(?:radius|away)\b",
                self._radius,
            ),
            (
                r"\b(?P<kw>near(?:\s+zip)?|in(?:\s+zip)?|zip(?:\s*code)?|zipcode|postal\s+code"
                rf"|around|about|close\s+to|by)\s*:?\s*{_ZIP}",
                self._zip,
            ),
            (rf"(?:{_AT_MOST}|\bwithin)\s*{a}\s*{_MILES}", self._mileage),
            (
                rf"\b(?:mileage|milage|miles|odometer)\s*(?:of|is|:)?\s*{_AT_MOST}\s*{a}",
                self._mileage_named,
            ),
            (
                rf"{a}\s*{_MILES}\s*(?:or\s+(?:less|fewer|under|below|lower)|max(?:imum)?|tops"
                r"|and\s+(?:under|below|less))\b",
                self._mileage,
            ),
            (rf"{_AT_LEAST}\s*{a}\s*{_MILES}", self._mileage_floor),
            (rf"{a}\s*{_MILES}", self._mileage),
            (
                rf"(?:\bbetween\s*)?{y1}\s*(?:-|to|and|through|thru|until)\s*{y2}",
                self._year_range,
            ),
            (rf"{y1}\s*-\s*(?P<yy>[0-9]{{2}})(?![\w])", self._year_range),
            (
                rf"{y1}\s*(?:(?:or|and|&)\s*)?(?:newer|later|up|above|after|more\s+recent)\b",
                self._year_from,
            ),
            (rf"{y1}\s*\+(?![0-9])", self._year_from),
            (
                r"\b(?P<kw>newer\s+than|later\s+than|after|since|from|starting(?:\s+(?:from|in"
                r"|at))?|at\s+least|no\s+older\s+than|not\s+older\s+than)\s*(?:the\s+)?"
                rf"(?:year\s+)?{y1}",
                self._year_from,
            ),
            (
                rf"{y1}\s*(?:(?:or|and|&)\s*)?(?:older|earlier|before|below)\b",
                self._year_until,
            ),
            (
                r"\b(?P<kw>older\s+than|before|earlier\s+than|prior\s+to|up\s*to|until|through"
                rf"|no\s+newer\s+than|not\s+newer\s+than)\s*(?:the\s+)?(?:year\s+)?{y1}",
                self._year_until,
            ),
            (
                rf"(?P<between>\bbetween\s*)?{a}\s*(?P<sep>-|to|and)\s*{b}(?!\s*{_MILES})",
                self._price_range,
            ),
            (rf"{_AROUND}\s*{a}", self._price_around),
            (rf"{_PRICE_AT_MOST}\s*:?\s*{a}", self._price_max),
            (
                rf"{a}\s*(?:or\s+(?:less|under|below|cheaper|lower)|max(?:imum)?|tops|budget"
                r"|limit|cap|and\s+(?:under|below|less))\b",
                self._price_max_after,
            ),
            (rf"{_AT_LEAST}\s*{a}", self._price_min),
            (
                rf"{a}\s*(?:\+(?![0-9])|or\s+(?:more|higher|above)\b|and\s+(?:up|above|over)\b"
                r"|min(?:imum)?\b)",
                self._price_min_after,
            ),
            (y1, self._lone_year),
            (a, self._bare_price),
        ]
        return [(re.compile(pattern), handler) for pattern, handler in rules]

    def _radius(self, match: re.Match[str]) -> str:
        self.heard.radius = _radius(int(match.group("r")))
        code = match.groupdict().get("zip")
        if code:
            self._place(code)
        return " | "

    def _zip(self, match: re.Match[str]) -> str:
        code = match.group("zip")
        keyword = match.group("kw").split()[0]
        named = keyword in {"near", "in", "zip", "zipcode", "postal"}
        # "around 34000" is a price, though a ZIP too.
        if zip_centroid(code) is not None and (named or int(code) % 1000):
            self.heard.zip = code
            return " | "
        if named:
            self.heard.unknown_zip = code
            return " | "
        return match.group(0)

    def _place(self, code: str) -> None:
        if zip_centroid(code) is not None:
            self.heard.zip = code
        else:
            self.heard.unknown_zip = code

    def _mileage(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None:
            return match.group(0)
        if _is_small(match, "a", value):
            if re.match(r"\s*(?:of\s+)?range\b", match.string[match.end() :]):
                return match.group(0)  # an electric car's range, not a distance
            # "30 mi", "under 30 miles": a distance, not an odometer reading.
            self.heard.radius = _radius(round(value))
        else:
            self.heard.mileage_max = _miles(match, value)
        return " | "

    def _mileage_named(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None:
            return match.group(0)
        self.heard.mileage_max = _miles(match, value)
        return " | "

    def _mileage_floor(self, match: re.Match[str]) -> str:
        # There is no lowest-mileage filter: "over 100k miles" is read and left out.
        value = _number(match, "a")
        if value is None or _is_small(match, "a", value):
            return match.group(0)
        return " | "

    def _year_range(self, match: re.Match[str]) -> str:
        first = int(match.group("y1"))
        groups = match.groupdict()
        if groups.get("yy") is not None:
            second = first // 100 * 100 + int(groups["yy"])
        else:
            second = int(groups["y2"])
        if not (self._plausible_year(first) and self._plausible_year(second)):
            return match.group(0)
        low, high = sorted((first, second))
        self.heard.year_min, self.heard.year_max = low, high
        return " | "

    def _year_from(self, match: re.Match[str]) -> str:
        year = int(match.group("y1"))
        if not self._plausible_year(year):
            return match.group(0)
        keyword = " ".join((match.groupdict().get("kw") or "").split())
        exclusive = keyword in {"newer than", "later than", "after"}
        self.heard.year_min = year + 1 if exclusive else year
        return " | "

    def _year_until(self, match: re.Match[str]) -> str:
        year = int(match.group("y1"))
        if not self._plausible_year(year):
            return match.group(0)
        keyword = " ".join((match.groupdict().get("kw") or "").split())
        exclusive = keyword in {"older than", "before", "earlier than", "prior to"}
        self.heard.year_max = year - 1 if exclusive else year
        return " | "

    def _lone_year(self, match: re.Match[str]) -> str:
        year = int(match.group("y1"))
        if not MIN_YEAR <= year <= self.current_year + 2:
            return match.group(0)
        heard = self.heard
        # Two lone years ("2018 or 2019") are a range.
        heard.year_min = year if heard.year_min is None else min(heard.year_min, year)
        heard.year_max = year if heard.year_max is None else max(heard.year_max, year)
        return " | "

    def _plausible_year(self, year: int) -> bool:
        return 1900 <= year <= self.current_year + 2

    def _price_range(self, match: re.Match[str]) -> str:
        low, high = _number(match, "a"), _number(match, "b")
        if low is None or high is None:
            return match.group(0)
        marked = any(
            match.group(f"{name}{suffix}") for name in "ab" for suffix in ("_usd", "_k", "_cur")
        )
        between = match.group("between") is not None
        if match.group("sep") == "and" and not between:
            return match.group(0)
        if not (marked or between or (low >= 1000 and high >= 1000)) or _counts_things(match):
            return match.group(0)
        if not match.group("a_k") and match.group("b_k") and low < 1000:
            low_dollars = low * 1000  # "15-25k"
        else:
            low_dollars = _dollars(match, "a", low)
        high_dollars = _dollars(match, "b", high)
        if low_dollars > high_dollars:
            low_dollars, high_dollars = high_dollars, low_dollars
        self.heard.price_min, self.heard.price_max = _price(low_dollars), _price(high_dollars)
        return " | "

    def _price_around(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None or _counts_things(match) or self._bare_year(match, value):
            return match.group(0)
        dollars = _dollars(match, "a", value)
        self.heard.price_min = _price(dollars * (1 - AROUND_SPREAD))
        self.heard.price_max = _price(dollars * (1 + AROUND_SPREAD))
        return " | "

    def _price_max(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None or _counts_things(match):
            return match.group(0)
        self.heard.price_max = _price(_dollars(match, "a", value))
        return " | "

    def _price_min(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None or _counts_things(match):
            return match.group(0)
        self.heard.price_min = _price(_dollars(match, "a", value))
        return " | "

    def _price_max_after(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None or not _looks_like_money(match, "a", value):
            return match.group(0)
        self.heard.price_max = _price(_dollars(match, "a", value))
        return " | "

    def _price_min_after(self, match: re.Match[str]) -> str:
        value = _number(match, "a")
        if value is None or not _looks_like_money(match, "a", value):
            return match.group(0)
        self.heard.price_min = _price(_dollars(match, "a", value))
        return " | "

    def _bare_price(self, match: re.Match[str]) -> str:
        # "$20,000" or "20k" on its own is what the shopper means to spend at most.
        value = _number(match, "a")
        marked = match.group("a_usd") or match.group("a_k") or match.group("a_cur")
        if value is None or not marked or _counts_things(match):
            return match.group(0)
        if self.heard.price_max is None:
            self.heard.price_max = _price(_dollars(match, "a", value))
        return " | "

    def _bare_year(self, match: re.Match[str], value: float) -> bool:
        marked = match.group("a_usd") or match.group("a_k") or match.group("a_cur")
        raw = match.group("a")
        return (
            not marked
            and raw.isdigit()
            and len(raw) == 4
            and MIN_YEAR <= value <= self.current_year + 2
        )

    # Words: makes and models, vocabularies, colors, then what is left

    def _words(self, text: str) -> None:
        # Names and colors do not straddle a number or a comma.
        segments = [re.findall(r"[^\W_]+", segment) for segment in re.split(r"[|,;!?()]", text)]
        tokens = _Tokens(segments)
        names = _NameFinder(self.catalog, tokens)
        names.find_exact()
        self._vocabulary(tokens)
        self._colors(tokens)
        names.find_fuzzy()
        heard = self.heard
        heard.makes, heard.models = names.makes(), names.models()
        heard.words = [
            word
            for word in tokens.free_words()
            if len(word) > 1
            and not word.isdigit()
            and word not in STOPWORDS
            and word not in _GRAMMAR_WORDS
        ]

    def _vocabulary(self, tokens: _Tokens) -> None:
        for segment in tokens.segments:
            i = 0
            while i < len(segment):
                for size in range(min(_LONGEST_PHRASE, len(segment) - i), 0, -1):
                    span = segment[i : i + size]
                    if not all(tokens.is_free(index) for index in span):
                        continue
                    phrase = tuple(tokens.words[index] for index in span)
                    if phrase not in _PHRASES:
                        continue
                    meaning = _PHRASES[phrase]
                    if meaning is not None:
                        self.heard.add_value(*meaning)
                    tokens.take(span)
                    i += size
                    break
                else:
                    i += 1

    def _colors(self, tokens: _Tokens) -> None:
        heard = self.heard
        for segment in tokens.segments:
            pending: list[int] = []
            interior_window = 0

            def settle(name: str, indexes: list[int]) -> None:
                for index in indexes:
                    heard.add_value(name, _COLOR_WORDS[tokens.words[index]])
                    tokens.take([index])
                indexes.clear()

            for index in segment:
                word = tokens.words[index]
                if tokens.is_free(index) and word in _COLOR_WORDS:
                    if interior_window:
                        settle("interior_color", [index])
                    else:
                        pending.append(index)
                elif word in _INTERIOR_MARKERS and tokens.is_free(index):
                    if pending:
                        settle("interior_color", pending)
                        tokens.take([index])
                    else:
                        interior_window = 3
                elif word in _EXTERIOR_MARKERS and pending:
                    settle("exterior_color", pending)
                    tokens.take([index])
                elif word == "on" and pending:
                    # "black on tan": black paint, tan interior.
                    settle("exterior_color", pending)
                    interior_window = 1
                elif word in _COLOR_CONNECTORS and (pending or interior_window):
                    interior_window = max(0, interior_window - 1)
                else:
                    settle("exterior_color", pending)
                    interior_window = 0
            settle("exterior_color", pending)


class _Tokens:
    """The words left after the numbers, in segments that names may not straddle."""

    def __init__(self, segments: Sequence[Sequence[str]]) -> None:
        self.words: list[str] = []
        self.segments: list[list[int]] = []
        self._segment_of: list[int] = []
        for segment in segments:
            indexes = []
            for word in segment:
                indexes.append(len(self.words))
                self.words.append(word)
                self._segment_of.append(len(self.segments))
            if indexes:
                self.segments.append(indexes)
        self._taken = [False] * len(self.words)

    def word_before(self, index: int) -> int | None:
        """The index of the word just before `index` in the same segment."""
        if index == 0 or self._segment_of[index - 1] != self._segment_of[index]:
            return None
        return index - 1

    def is_free(self, index: int) -> bool:
        return not self._taken[index]

    def take(self, indexes: Iterable[int]) -> None:
        for index in indexes:
            self._taken[index] = True

    def release(self, indexes: Iterable[int]) -> None:
        for index in indexes:
            self._taken[index] = False

    def free_words(self) -> list[str]:
        return [word for index, word in enumerate(self.words) if not self._taken[index]]


@dataclass
class _ModelSpan:
    indexes: list[int]
    hits: list[tuple[str, str]]


class _NameFinder:
    """Makes and models in the tokens: exact (catalog) first, fuzzy after the rest."""

    def __init__(self, catalog: Catalog, tokens: _Tokens) -> None:
        self.catalog = catalog
        self.tokens = tokens
        self._makes: list[str] = []
        self._make_at: dict[int, str] = {}  # last token index of a make -> make
        self._models: list[tuple[str | None, str]] = []

    def makes(self) -> list[str]:
        found = list(self._makes)
        for make, _model in self._models:
            if make is not None and make not in found:
                found.append(make)
        return found

    def models(self) -> list[str]:
        return list(dict.fromkeys(model for _make, model in self._models))

    def find_exact(self) -> None:
        tokens = self.tokens
        spans: list[_ModelSpan] = []
        for segment in tokens.segments:
            i = 0
            while i < len(segment):
                for size in range(min(_MAX_NAME_WORDS, len(segment) - i), 0, -1):
                    span = segment[i : i + size]
                    words = [tokens.words[index] for index in span]
                    make = self._exact_make(words)
                    if make is not None:
                        self._add_make(make, span)
                        tokens.take(span)
                        i += size
                        break
                    hits = self._exact_models(words)
                    if hits:
                        spans.append(_ModelSpan(span, hits))
                        tokens.take(span)
                        i += size
                        break
                else:
                    i += 1
        for model_span in spans:
            self._resolve(model_span)

    def _exact_make(self, words: list[str]) -> str | None:
        for key in _plural_keys(match_key("".join(words))):
            if len(words) == 1 and key in _COMMON_MAKE_WORDS:
                return None
            make = self.catalog.canonical_make(key)
            if make is not None:
                return make
        return None

    def _exact_models(self, words: list[str]) -> list[tuple[str, str]]:
        if words == ["models"]:
            return []
        for key in _plural_keys(match_key("".join(words))):
            hits = []
            for make in self.catalog.makes:
                model = self.catalog.canonical_model(make, key)
                if model is not None:
                    hits.append((make, model))
            if hits:
                return hits
        return []

    def _add_make(self, make: str, span: list[int]) -> None:
        if make not in self._makes:
            self._makes.append(make)
        self._make_at[span[-1]] = make

    def _resolve(self, span: _ModelSpan) -> None:
        tokens = self.tokens
        words = [tokens.words[index] for index in span.indexes]
        key = match_key("".join(words))
        before = tokens.word_before(span.indexes[0])
        if _needs_its_make(words, key):
            make_before = None if before is None else self._make_at.get(before)
            hits = [hit for hit in span.hits if hit[0] == make_before]
        else:
            hits = [hit for hit in span.hits if hit[0] in self._makes]
            if not hits:
                place = before is not None and tokens.words[before] in _PLACE_WORDS
                hits = [] if place else span.hits
        if not hits:
            tokens.release(span.indexes)
            return
        if len({make for make, _model in hits}) == 1:
            self._models.extend(hits)
        else:
            # A name shared by several makes ("sprinter") names no make.
            self._models.extend((None, model) for _make, model in hits)
        self._free_vocabulary(span.indexes, hits[0])

    def _free_vocabulary(self, indexes: list[int], hit: tuple[str, str]) -> None:
        tokens = self.tokens
        words = [tokens.words[index] for index in indexes]
        free: list[int] = []
        i = 0
        while i < len(words):
            for size in range(min(_LONGEST_PHRASE, len(words) - i), 0, -1):
                if tuple(words[i : i + size]) in _FREE_PHRASES:
                    free.extend(indexes[i : i + size])
                    i += size
                    break
            else:
                i += 1
        rest = [tokens.words[index] for index in indexes if index not in free]
        if free and rest:
            make, model = hit
            if self.catalog.canonical_model(make, match_key("".join(rest))) == model:
                tokens.release(free)

    def find_fuzzy(self) -> None:
        candidates = _fuzzy_make_candidates(self.catalog)
        for span, word in self._fuzzy_spans():
            make = _closest(word, candidates) if self._free(span) else None
            if make is not None:
                self._add_make(make, span)
                self.tokens.take(span)
        named = self.makes()
        if not named:
            return
        model_candidates: dict[str, list[tuple[str, str]]] = {}
        for make in named:
            for key, model in _fuzzy_model_candidates(self.catalog, make):
                model_candidates.setdefault(key, []).append((make, model))
        for span, word in self._fuzzy_spans():
            found = _closest(word, model_candidates) if self._free(span) else None
            if found is not None:
                self._models.append(found)
                self.tokens.take(span)

    def _free(self, span: list[int]) -> bool:
        return all(self.tokens.is_free(index) for index in span)

    def _fuzzy_spans(self) -> list[tuple[list[int], str]]:
        """Free words that may be typos of a name, two-word names ("land rovr") first."""
        tokens = self.tokens
        spans: list[tuple[list[int], str]] = []
        for segment in tokens.segments:
            usable = [
                index
                for index in segment
                if tokens.is_free(index)
                and tokens.words[index].isascii()
                and tokens.words[index].isalpha()
                and len(tokens.words[index]) <= 20
                and tokens.words[index] not in FUZZY_EXCLUDED
            ]
            for first, second in itertools.pairwise(usable):
                joined = tokens.words[first] + tokens.words[second]
                if second == first + 1 and len(joined) >= 8:
                    spans.append(([first, second], joined))
            spans.extend(([index], tokens.words[index]) for index in usable)
        return [(span, word) for span, word in spans if len(word) >= 4]


def _needs_its_make(words: list[str], key: str) -> bool:
    if key.isdigit() or (key.isalpha() and len(key) <= 2):
        return True
    if " ".join(words) in {"for two", "five hundred"}:
        return True
    return any(name in _COMMON_MODEL_NAMES for name in _plural_keys(key))


def _plural_keys(key: str) -> list[str]:
    keys = [key]
    if len(key) >= 4 and key.endswith("s"):
        keys.append(key[:-1])
        if key.endswith("es"):
            keys.append(key[:-2])
    return keys


# Fuzzy matching


@cache
def _reference_names() -> tuple[Mapping[str, tuple[str, ...]], Mapping[str, tuple[str, ...]]]:
    """Names and aliases of the packaged reference, by make: what typos are compared to.
    Each candidate is checked against the catalog in use before it counts."""
    make_names: dict[str, tuple[str, ...]] = {}
    model_names: dict[str, tuple[str, ...]] = {}
    for make in load_reference():
        make_names[make.name] = (
            make.name,
            *make.aliases,
            *COMMON_MAKE_ALIASES.get(make.name, ()),
        )
        model_names[make.name] = tuple(
            name for model in make.models for name in (model.name, *model.aliases)
        )
    return make_names, model_names


def _fuzzy_make_candidates(catalog: Catalog) -> dict[str, list[str]]:
    make_names, _ = _reference_names()
    candidates: dict[str, list[str]] = {}
    for make in catalog.makes:
        for name in (make, *make_names.get(make, ())):
            key = match_key(name)
            if key.isalpha() and len(key) >= 4 and catalog.canonical_make(name) == make:
                makes = candidates.setdefault(key, [])
                if make not in makes:
                    makes.append(make)
    return candidates


def _fuzzy_model_candidates(catalog: Catalog, make: str) -> list[tuple[str, str]]:
    _, model_names = _reference_names()
    found = []
    for name in model_names.get(make, ()):
        key = match_key(name)
        model = catalog.canonical_model(make, key)
        if model is not None and key.isalpha() and len(key) >= 4:
            found.append((key, model))
    return found


def _closest(word: str, candidates: Mapping[str, list[_T]]) -> _T | None:
    """The one thing whose name is within the allowed typos of `word`, or None when none
    is, or when two different things are equally close."""
    limit = 1 if len(word) < 8 else 2
    best: list[_T] = []
    best_distance = limit
    for key, things in candidates.items():
        if key[0] != word[0] or abs(len(key) - len(word)) > limit:
            continue
        # Distances beyond the best so far come back as best_distance + 1.
        distance = _typo_distance(word, key, best_distance + 1)
        if distance < best_distance or (distance == best_distance and not best):
            best, best_distance = list(things), distance
        elif distance == best_distance:
            best.extend(thing for thing in things if thing not in best)
    return best[0] if len(best) == 1 else None


def _typo_distance(a: str, b: str, give_up: int) -> int:
    """Optimal string alignment distance (Levenshtein plus swaps of neighbours); any value
    of at least `give_up` may be returned as `give_up`."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], previous2[j - 2] + 1)
        if min(row) >= give_up:
            return give_up
        previous2, previous = previous, row
    return min(previous[-1], give_up)


# Numbers' values


def _number(match: re.Match[str], name: str) -> float | None:
    digits = match.group(name).replace(",", "")
    if len(digits) > 12:
        return None
    value = float(digits)
    return value * 1000 if match.group(f"{name}_k") else value


def _is_small(match: re.Match[str], name: str, value: float) -> bool:
    return value < 1000 and not match.group(f"{name}_k")


def _miles(match: re.Match[str], value: float) -> int:
    # "mileage under 50" means thousands.
    miles = value * 1000 if _is_small(match, "a", value) else value
    return min(round(miles), MAX_MILEAGE)


def _dollars(match: re.Match[str], name: str, value: float) -> float:
    """A price without a dollar sign below 1,000 is in thousands: nobody shops for a $25
    car, many say "under 25"."""
    if value < 1000 and not match.group(f"{name}_k") and not match.group(f"{name}_usd"):
        return value * 1000
    return value


def _looks_like_money(match: re.Match[str], name: str, value: float) -> bool:
    marked = match.group(f"{name}_usd") or match.group(f"{name}_k") or match.group(f"{name}_cur")
    return bool(marked) or value >= 1000


def _counts_things(match: re.Match[str]) -> bool:
    """A number followed by "seats", "mpg", "years"... is not an amount of money."""
    following = re.match(r"\s*-?\s*([^\W\d_]+)", match.string[match.end() :])
    return following is not None and following.group(1) in _NOT_MONEY


def _price(value: float) -> int:
    return max(0, min(round(value), MAX_PRICE))


def _radius(value: int) -> int:
    return max(1, min(value, MAX_RADIUS_MILES))


def _normalize(message: str) -> str:
    decomposed = unicodedata.normalize("NFKD", message.casefold())
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    text = re.sub(r"[\u2018\u2019\u02bc`']", "", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    text = re.sub(r"\bmini[\s-]*vans?\b", " minivan ", text)
    text = re.sub(r"\bpick[\s-]+ups?\b", " pickup ", text)
    return " ".join(text.split())


# Previous filters, the message, preferences


def _filters_data(filters: SearchFilters) -> dict[str, Any]:
    # `previous` may be a subclass carrying paging and sorting: only filters are kept.
    return filters.model_dump(include=set(SearchFilters.model_fields), exclude_defaults=True)


def _apply(
    heard: _Heard, data: dict[str, Any], *, follow_up: bool, current_year: int
) -> tuple[dict[str, Any], list[str]]:
    recognized: list[str] = []
    for name in heard.cleared:
        for field_name in _CLEARABLE[name]:
            data.pop(field_name, None)
    union = follow_up and heard.union
    if heard.makes or heard.models:
        if union:
            makes = _merged(data.get("make", []), heard.makes)
            models = _merged(data.get("model", []), heard.models)
            # A make added without a model would be filtered down to the old models.
            if heard.makes and not heard.models:
                models = []
            data["make"], data["model"] = makes, models
        else:
            data["make"], data["model"] = list(heard.makes), list(heard.models)
        data.pop("trim", None)
    if heard.makes:
        recognized.append("make " + " or ".join(heard.makes))
    if heard.models:
        recognized.append("model " + " or ".join(heard.models))
    for name in (
        "body_style",
        "fuel_type",
        "drivetrain",
        "transmission",
        "exterior_color",
        "interior_color",
        "condition",
        "deal_rating",
    ):
        values = heard.values.get(name)
        if not values:
            continue
        data[name] = _merged(data.get(name, []), values) if union else list(values)
        label = _FIELD_LABELS[name]
        shown = " or ".join(_VALUE_LABELS.get(value, str(value)) for value in values)
        recognized.append(f"{shown} deals" if name == "deal_rating" else f"{label} {shown}")

    if _apply_range(data, "year", heard.year_min, heard.year_max):
        recognized.append(_year_phrase(data))
    elif heard.newer:
        previous_min = data.get("year_min")
        newest = current_year + 1
        year_min = (
            previous_min + NEWER_STEP_YEARS
            if previous_min is not None
            else current_year - NEWER_DEFAULT_AGE_YEARS
        )
        _apply_range(data, "year", min(year_min, newest), None)
        recognized.append(_year_phrase(data))

    if _apply_range(data, "price", heard.price_min, heard.price_max):
        recognized.append(_price_phrase(data))
    elif heard.cheaper:
        previous_max = data.get("price_max")
        price_max = (
            round(previous_max * CHEAPER_FACTOR) if previous_max is not None else CHEAP_PRICE_MAX
        )
        _apply_range(data, "price", None, price_max)
        recognized.append(_price_phrase(data))
    elif heard.cheap:
        previous_max = data.get("price_max")
        price_max = CHEAP_PRICE_MAX if previous_max is None else min(previous_max, CHEAP_PRICE_MAX)
        _apply_range(data, "price", None, price_max)
        recognized.append(_price_phrase(data))

    if heard.mileage_max is not None:
        data["mileage_max"] = heard.mileage_max
    elif heard.fewer_miles:
        previous_miles = data.get("mileage_max")
        data["mileage_max"] = (
            round(previous_miles * LOWER_MILES_FACTOR)
            if previous_miles is not None
            else LOW_MILEAGE_MAX
        )
    if heard.mileage_max is not None or heard.fewer_miles:
        recognized.append(f"under {data['mileage_max']:,} miles")

    if heard.zip is not None:
        data["zip"] = heard.zip
    if heard.radius is not None:
        data["radius"] = heard.radius
    if heard.zip is not None or heard.radius is not None:
        recognized.append(_place_phrase(data))

    for name in heard.cleared:
        recognized.append(f"any {name}")
    if heard.words and not (heard.makes or heard.models):
        data["q"] = _query_text(heard.words)
        recognized.append(f'text "{data["q"]}"')
    return data, recognized


def _apply_preferences(
    data: dict[str, Any],
    preferences: Mapping[str, Any],
    heard: _Heard,
    recognized: list[str],
    *,
    radius_given: bool,
) -> None:
    home_zip = preferences.get("home_zip")
    radius = _whole_number(preferences.get("radius"), 1, 1_000_000)
    if (
        data.get("zip") is None
        and heard.unknown_zip is None
        and "location" not in heard.cleared
        and isinstance(home_zip, str)
        and re.fullmatch(r"[0-9]{5}", home_zip.strip())
        and zip_centroid(home_zip.strip()) is not None
    ):
        data["zip"] = home_zip.strip()
        if radius is not None and heard.radius is None:
            data["radius"] = _radius(radius)
        recognized.append(_place_phrase(data) + " (your home ZIP)")
    elif data.get("zip") is not None and not radius_given and radius is not None:
        data["radius"] = _radius(radius)
        place = _place_phrase(data) + " (your usual radius)"
        recognized[:] = [p for p in recognized if not p.startswith("within ")] + [place]
    price_max = _whole_number(preferences.get("price_max"), 0, MAX_PRICE)
    if (
        price_max is not None
        and data.get("price_max") is None
        and "price" not in heard.cleared
        and (data.get("price_min") is None or data["price_min"] <= price_max)
    ):
        data["price_max"] = price_max
        recognized.append(_price_phrase(data) + " (your budget)")


def _apply_range(data: dict[str, Any], name: str, low: int | None, high: int | None) -> bool:
    """Set the bounds given; a kept bound that contradicts a new one is dropped."""
    low_name, high_name = f"{name}_min", f"{name}_max"
    if low is None and high is None:
        return False
    if low is not None:
        data[low_name] = low
        if high is None and data.get(high_name) is not None and data[high_name] < low:
            data.pop(high_name)
    if high is not None:
        data[high_name] = high
        if low is None and data.get(low_name) is not None and data[low_name] > high:
            data.pop(low_name)
    if name == "year":
        if data.get("year_min") is not None and data["year_min"] < MIN_YEAR:
            data["year_min"] = MIN_YEAR
        for bound in (low_name, high_name):
            value = data.get(bound)
            if value is not None and not MIN_YEAR <= value <= MAX_YEAR:
                data.pop(bound)
    return True


def _merged(old: Iterable[Any], new: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys([*old, *new]))


def _whole_number(value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    number = round(value)
    return number if low <= number <= high else None


def _query_text(words: list[str]) -> str:
    text = ""
    for word in words:
        candidate = f"{text} {word}".strip()
        if len(candidate) > MAX_Q_CHARS:
            break
        text = candidate
    return text


def _valid_filters(data: dict[str, Any]) -> SearchFilters:
    """The filters, dropping any field that still fails to validate: never raises."""
    for _attempt in range(len(SearchFilters.model_fields) + 1):
        try:
            return SearchFilters.model_validate(data)
        except ValidationError as error:
            bad = {str(err["loc"][0]) for err in error.errors() if err["loc"]}
            if not bad & data.keys():
                break
            for name in bad:
                data.pop(name, None)
            if any(not err["loc"] for err in error.errors()):
                for bound in ("year_min", "year_max", "price_min", "price_max"):
                    data.pop(bound, None)
    return SearchFilters()


# Phrases for the answer text

_FIELD_LABELS: Mapping[str, str] = {
    "body_style": "body style",
    "fuel_type": "fuel",
    "drivetrain": "drivetrain",
    "transmission": "transmission",
    "exterior_color": "color",
    "interior_color": "interior",
    "condition": "condition",
    "deal_rating": "deals",
}
_VALUE_LABELS: Mapping[StrEnum, str] = {
    BodyStyle.suv: "SUV",
    FuelType.plug_in_hybrid: "plug-in hybrid",
    FuelType.flex_fuel: "flex fuel",
    Drivetrain.awd: "AWD",
    Drivetrain.four_wd: "4WD",
    Drivetrain.fwd: "FWD",
    Drivetrain.rwd: "RWD",
    Transmission.cvt: "CVT",
    Condition.cpo: "certified pre-owned",
}


def _year_phrase(data: Mapping[str, Any]) -> str:
    low, high = data.get("year_min"), data.get("year_max")
    if low is not None and high is not None:
        return f"year {low}" if low == high else f"years {low} to {high}"
    if low is not None:
        return f"year {low} or newer"
    if high is not None:
        return f"year {high} or older"
    return "any year"


def _price_phrase(data: Mapping[str, Any]) -> str:
    low, high = data.get("price_min"), data.get("price_max")
    if low is not None and high is not None:
        return f"price ${low:,} to ${high:,}"
    if high is not None:
        return f"price under ${high:,}"
    if low is not None:
        return f"price over ${low:,}"
    return "any price"


def _place_phrase(data: Mapping[str, Any]) -> str:
    radius = data.get("radius", DEFAULT_RADIUS_MILES)
    code = data.get("zip")
    return f"within {radius} miles of {code}" if code else f"within {radius} miles"
