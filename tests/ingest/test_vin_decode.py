"""The decoded-VIN record, offline decoding, and the decoder when vPIC cannot be reached."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from carsearch.ingest.vin_decode import DecodedVin, VinDecoder, decode_offline
from carsearch.ingest.vpic import VpicClient, decoded_from_vpic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vpic"

HONDA_ACCORD_2003 = "1HGCM82633A004352"
TESLA_MODEL_3_2019 = "5YJ3E1EA2KF317000"
TESLA_WRONG_CHECK_DIGIT = "5YJ3E1EA7KF317000"
# Same check-digit-valid shape, position 10 "A": a letter in position 7 means 2010...
LETTER_AT_7_YEAR_A = "1G1JC5SH7A4100000"
# ...a digit there means 1980.
DIGIT_AT_7_YEAR_A = "1G1JC52F0A7100000"


@pytest.fixture
async def unreachable_vpic() -> AsyncIterator[VpicClient]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: every request is refused.
    async with VpicClient(
        base_url=f"http://127.0.0.1:{port}/api/", timeout=0.5, min_interval=0, retry_delay=0
    ) as client:
        yield client


def test_offline_decodes_a_honda_accord() -> None:
    decoded = decode_offline(HONDA_ACCORD_2003)

    assert decoded.source == "offline"
    assert decoded.needs_online_decode
    assert decoded.valid_check_digit is True
    assert (decoded.make, decoded.model, decoded.model_year) == ("Honda", "Accord", 2003)
    assert (decoded.trim, decoded.body_class) == ("EX-V6", "Coupe")
    assert (decoded.manufacturer, decoded.plant_country) == ("Honda", "United States")
    assert decoded.vehicle_type == "Passenger Car"
    assert decoded.engine is None  # not in the offline subset
    assert (decoded.error_codes, decoded.raw) == ((), {})


def test_offline_decodes_a_tesla() -> None:
    decoded = decode_offline(TESLA_MODEL_3_2019)

    assert (decoded.make, decoded.model, decoded.model_year) == ("Tesla", "Model 3", 2019)
    assert decoded.body_class == "Sedan/Saloon"
    assert decoded.trim is None  # the library answers "", which is no trim


def test_offline_flags_a_wrong_check_digit_and_still_decodes() -> None:
    decoded = decode_offline(TESLA_WRONG_CHECK_DIGIT)

    assert decoded.valid_check_digit is False
    assert decoded.vin == TESLA_WRONG_CHECK_DIGIT
    assert (decoded.make, decoded.model) == ("Tesla", "Model 3")


def test_offline_model_year_follows_position_7() -> None:
    assert decode_offline(LETTER_AT_7_YEAR_A).model_year == 2010
    assert decode_offline(DIGIT_AT_7_YEAR_A).model_year == 1980


def test_offline_normalizes_the_vin() -> None:
    decoded = decode_offline(f"  {HONDA_ACCORD_2003.lower()} ")

    assert decoded.vin == HONDA_ACCORD_2003
    assert decoded.model == "Accord"


@pytest.mark.parametrize(
    "vin",
    [
        "11111111111111111",  # a WMI no library knows
        "ZZZZZZZZZZZZZZZZZ",  # no model year code in position 10
        "00000000000000000",
        "WVWZZZ1KZAW000000",  # European: no check digit
        "SCBZZZ3W0ZZ000000",
    ],
)
def test_offline_never_raises_for_a_vin_shaped_string(vin: str) -> None:
    decoded = decode_offline(vin)

    assert decoded.vin == vin
    assert decoded.source == "offline"


@pytest.mark.parametrize("not_a_vin", ["", "ABC", "1HGCM82633A00435O", "1HGCM82633A0043521", "é"])
def test_offline_gives_an_empty_record_for_a_string_that_is_not_a_vin(not_a_vin: str) -> None:
    decoded = decode_offline(not_a_vin)

    assert decoded.valid_check_digit is False
    assert (decoded.make, decoded.model_year, decoded.manufacturer) == (None, None, None)


def test_offline_leaves_an_unknown_manufacturer_empty() -> None:
    decoded = decode_offline("11111111111111111")

    assert decoded.manufacturer is None
    assert decoded.make is None


def test_json_round_trip_of_a_vpic_record() -> None:
    document = json.loads((FIXTURES / "decode-vin-values-batch_errors.wrapped.json").read_text())
    decoded = decoded_from_vpic(document["content"]["Results"][1])

    stored = json.loads(json.dumps(decoded.to_json()))

    assert stored["error_codes"] == ["5", "6", "14"]
    assert stored["raw"]["Make"] == "TESLA"
    assert DecodedVin.from_json(stored) == decoded


def test_json_round_trip_of_an_offline_record() -> None:
    decoded = decode_offline(HONDA_ACCORD_2003)

    assert DecodedVin.from_json(json.loads(json.dumps(decoded.to_json()))) == decoded


def test_from_json_ignores_keys_it_does_not_know() -> None:
    stored = {**decode_offline(HONDA_ACCORD_2003).to_json(), "added_later": 1}

    assert DecodedVin.from_json(stored).model == "Accord"


def test_from_json_refuses_an_unknown_source() -> None:
    stored = {**decode_offline(HONDA_ACCORD_2003).to_json(), "source": "guess"}

    with pytest.raises(ValueError, match="unknown decode source 'guess'"):
        DecodedVin.from_json(stored)


async def test_decoder_decodes_offline_when_vpic_is_unreachable(
    unreachable_vpic: VpicClient,
) -> None:
    vins = [HONDA_ACCORD_2003, TESLA_WRONG_CHECK_DIGIT, "not a vin", HONDA_ACCORD_2003.lower()]

    decoded = await VinDecoder(unreachable_vpic).decode_many(vins)

    assert list(decoded) == [HONDA_ACCORD_2003, TESLA_WRONG_CHECK_DIGIT, "NOT A VIN"]
    assert {record.source for record in decoded.values()} == {"offline"}
    assert decoded[HONDA_ACCORD_2003].model == "Accord"
    assert decoded[TESLA_WRONG_CHECK_DIGIT].valid_check_digit is False
    assert decoded["NOT A VIN"].make is None


async def test_decoder_with_nothing_to_decode(unreachable_vpic: VpicClient) -> None:
    assert await VinDecoder(unreachable_vpic).decode_many([]) == {}
