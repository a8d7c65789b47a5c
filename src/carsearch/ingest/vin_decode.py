"""Decoded VIN records, offline decoding, and the decoder that tries vPIC first.

A VIN is never lost: when vPIC cannot answer, the VIN is decoded offline and marked
`source="offline"`, so that it can be decoded online again later.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

from vin import VIN
from vininfo import Vin as WmiInfo
from vininfo.common import UnsupportedBrand

from carsearch.listings.vin import check_digit, has_vin_shape, model_year, normalize_vin

if TYPE_CHECKING:
    from carsearch.ingest.vpic import VpicClient

log = logging.getLogger(__name__)

DecodeSource = Literal["vpic", "offline"]

# The `vin` package keeps one SQLite connection for every thread.
_OFFLINE_DB_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodedVin:
    """What is known about one VIN, from vPIC or from the offline libraries.

    Unknown values are None. `raw` holds vPIC's non-empty values as it sent them (trimmed),
    for storing as jsonb; it is empty for offline decodes.
    """

    vin: str
    valid_check_digit: bool
    source: DecodeSource
    model_year: int | None = None
    make: str | None = None
    model: str | None = None
    trim: str | None = None
    series: str | None = None
    body_class: str | None = None
    drive_type: str | None = None
    fuel_type: str | None = None
    engine: str | None = None
    cylinders: int | None = None
    displacement_l: float | None = None
    transmission: str | None = None
    doors: int | None = None
    manufacturer: str | None = None
    plant_country: str | None = None
    vehicle_type: str | None = None
    error_codes: tuple[str, ...] = ()
    error_text: str | None = None
    raw: dict[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.source not in get_args(DecodeSource):
            raise ValueError(f"unknown decode source {self.source!r}")

    @property
    def needs_online_decode(self) -> bool:
        return self.source == "offline"

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["error_codes"] = list(self.error_codes)
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DecodedVin:
        # Keys written by a newer version of this record are ignored, not fatal.
        known = {record_field.name for record_field in fields(cls)}
        values = {key: value for key, value in document.items() if key in known}
        values["error_codes"] = tuple(values.get("error_codes") or ())
        values["raw"] = dict(values.get("raw") or {})
        return cls(**values)


def decode_offline(vin: str) -> DecodedVin:
    """Decode without the network: the VIN's own rules, its WMI, and the `vin` package's
    copy of vPIC (which ends in early 2024). Never raises."""
    normalized = normalize_vin(vin)
    if not has_vin_shape(normalized):
        return DecodedVin(vin=normalized, valid_check_digit=False, source="offline")
    year = model_year(normalized)
    wmi_manufacturer, wmi_country = _wmi_facts(normalized)
    vehicle = _offline_vpic_facts(normalized, year)
    return DecodedVin(
        vin=normalized,
        valid_check_digit=normalized[8] == check_digit(normalized),
        source="offline",
        model_year=year,
        make=vehicle.get("make"),
        model=vehicle.get("model"),
        trim=vehicle.get("trim"),
        series=vehicle.get("series"),
        body_class=vehicle.get("body_class"),
        manufacturer=wmi_manufacturer or vehicle.get("manufacturer"),
        # The WMI's country is where that manufacturer code was assigned, which is where
        # the plant is for nearly every WMI.
        plant_country=wmi_country,
        vehicle_type=vehicle.get("vehicle_type"),
    )


def _wmi_facts(vin: str) -> tuple[str | None, str | None]:
    """(manufacturer, country) from the WMI, via vininfo."""
    try:
        info = WmiInfo(vin)
        manufacturer = None if isinstance(info.assembler, UnsupportedBrand) else info.manufacturer
        country = info.country
    except Exception:  # a third-party lookup must not stop a decode, whatever it raises
        log.debug("vininfo could not read the WMI of %s", vin, exc_info=True)
        return None, None
    return _text_or_none(manufacturer), _text_or_none(country)


_OFFLINE_VPIC_ATTRIBUTES = (
    "make",
    "model",
    "trim",
    "series",
    "body_class",
    "vehicle_type",
    "manufacturer",
)


def _offline_vpic_facts(vin: str, year: int | None) -> dict[str, str]:
    """Make, model, trim... from the `vin` package; empty when it does not know the VIN."""
    try:
        with _OFFLINE_DB_LOCK:
            # A wrong check digit is reported by DecodedVin.valid_check_digit; like vPIC,
            # still decode the rest of the VIN. Without a year code, match any year.
            vehicle = VIN(vin, fix_check_digit=True, decode_model_year=year is not None)
    except Exception:  # ValueError, DecodingError... for VINs outside its subset
        log.debug("the vin package could not decode %s", vin, exc_info=True)
        return {}
    facts: dict[str, str] = {}
    for name in _OFFLINE_VPIC_ATTRIBUTES:
        try:
            value = _text_or_none(getattr(vehicle, name))
        except Exception:  # its properties raise DecodingRequiredError for missing values
            value = None
        if value is not None:
            facts[name] = value
    return facts


def _text_or_none(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


class VinDecoder:
    """Decodes VINs with vPIC in batches, and offline when vPIC is unavailable."""

    def __init__(self, client: VpicClient) -> None:
        self._client = client

    async def decode_many(self, vins: Iterable[str]) -> dict[str, DecodedVin]:
        """One record per distinct VIN, keyed by the normalized VIN, in input order.

        VINs of the wrong shape are not sent to vPIC; they get an (empty) offline record.
        """
        # vpic imports this module for DecodedVin; importing it here breaks the cycle.
        from carsearch.ingest.vpic import MAX_VINS_PER_BATCH, VpicUnavailable

        wanted = list(dict.fromkeys(normalize_vin(vin) for vin in vins))
        decoded: dict[str, DecodedVin] = {}
        online = [vin for vin in wanted if has_vin_shape(vin)]
        for start in range(0, len(online), MAX_VINS_PER_BATCH):
            batch = online[start : start + MAX_VINS_PER_BATCH]
            try:
                decoded.update(await self._client.decode_batch(batch))
            except VpicUnavailable as failure:
                # Stop calling a service that just failed; the remaining VINs wait for a
                # later online decode.
                log.warning("vPIC unavailable, decoding the remaining VINs offline: %s", failure)
                break
        undecoded = [vin for vin in wanted if vin not in decoded]
        if undecoded:
            decoded.update(await asyncio.to_thread(_decode_all_offline, undecoded))
        return {vin: decoded[vin] for vin in wanted}


def _decode_all_offline(vins: Sequence[str]) -> dict[str, DecodedVin]:
    return {vin: decode_offline(vin) for vin in vins}
