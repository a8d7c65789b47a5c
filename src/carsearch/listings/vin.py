"""VIN rules (ISO 3779 / 49 CFR 565): shape, check digit and model year.

Pure functions, shared by the seed generator, the API validators and the ingest pipeline.
"""

from __future__ import annotations

import re

VIN_PATTERN = r"^[A-HJ-NPR-Z0-9]{17}$"
_VIN_RE = re.compile(VIN_PATTERN)

_TRANSLITERATION = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

# Position 10 cycles through these 30 characters every 30 years, starting 1980.
YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"
VIN_CHARACTERS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


def normalize_vin(value: str) -> str:
    return value.strip().upper()


def has_vin_shape(vin: str) -> bool:
    """17 characters from the VIN alphabet (no I, O or Q)."""
    return bool(_VIN_RE.match(vin))


def check_digit(vin: str) -> str:
    """The check digit (position 9) the other 16 characters call for."""
    total = sum(_TRANSLITERATION[c] * w for c, w in zip(vin, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def is_valid_vin(vin: str) -> bool:
    """Shape and check digit. North American VINs carry a check digit; we require it."""
    return has_vin_shape(vin) and vin[8] == check_digit(vin)


def with_check_digit(vin: str) -> str:
    """Return `vin` with position 9 replaced by its correct check digit."""
    return vin[:8] + check_digit(vin[:8] + "0" + vin[9:]) + vin[9:]


def year_code(year: int) -> str:
    if not 1980 <= year <= 2039:
        raise ValueError(f"model year {year} has no VIN code")
    return YEAR_CODES[(year - 1980) % 30]


def model_year(vin: str) -> int | None:
    """Model year from position 10, disambiguated by position 7.

    For North American light vehicles a letter in position 7 means 2010-2039, a digit
    means 1980-2009.
    """
    if not has_vin_shape(vin) or vin[9] not in YEAR_CODES:
        return None
    offset = YEAR_CODES.index(vin[9])
    return 2010 + offset if vin[6].isalpha() else 1980 + offset
