"""vPIC mapping and client, against a local HTTP server that answers with real recordings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from fake_vpic import (
    BATCH_ERRORS_FILE,
    BMW_PARTIAL_VIN,
    CLIENT_TIMEOUT,
    F150_FILE,
    F150_VIN,
    HONDA_VIN,
    TIGUAN_2026_FILE,
    TIGUAN_VIN,
    FakeVpic,
    RecordedSleeps,
    recorded_content,
    recorded_result,
    running_fake_vpic,
)

from carsearch.ingest.vin_decode import VinDecoder
from carsearch.ingest.vpic import VpicClient, VpicUnavailable, decoded_from_vpic
from carsearch.listings.vin import with_check_digit


@pytest.fixture(scope="module")
def vpic_server() -> Iterator[FakeVpic]:
    with running_fake_vpic() as state:
        yield state


@pytest.fixture
def vpic(vpic_server: FakeVpic) -> FakeVpic:
    vpic_server.reset()
    return vpic_server


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
async def client(vpic: FakeVpic, sleeps: RecordedSleeps) -> AsyncIterator[VpicClient]:
    async with VpicClient(
        base_url=vpic.base_url, timeout=CLIENT_TIMEOUT, min_interval=0, sleep=sleeps
    ) as client:
        yield client


def generated_vins(count: int) -> list[str]:
    return [with_check_digit(f"1HGCM82633A{serial:06d}") for serial in range(count)]


# Mapping


def test_f150_recording_maps_to_a_clean_decode() -> None:
    decoded = decoded_from_vpic(recorded_result(F150_FILE))

    assert decoded.vin == F150_VIN
    assert decoded.source == "vpic"
    assert decoded.valid_check_digit is True
    assert (decoded.make, decoded.model, decoded.model_year) == ("FORD", "F-150", 2021)
    assert (decoded.trim, decoded.series) == ("SuperCrew-SSV", "F-Series")
    assert decoded.body_class == "Pickup"
    assert decoded.drive_type == "4WD/4-Wheel Drive/4x4"
    assert decoded.fuel_type == "Gasoline"
    assert (decoded.engine, decoded.cylinders, decoded.displacement_l) == ("3.5L V6", 6, 3.5)
    assert decoded.manufacturer == "FORD MOTOR COMPANY, USA"
    assert decoded.plant_country == "UNITED STATES (USA)"
    assert decoded.vehicle_type == "TRUCK"  # recorded as "TRUCK " with a trailing space
    assert decoded.transmission is None
    assert decoded.doors is None
    assert decoded.error_codes == ("0",)


def test_raw_keeps_only_values_that_say_something() -> None:
    result = recorded_result(F150_FILE)

    raw = decoded_from_vpic(result).raw

    assert raw["Make"] == "FORD"
    assert raw["VehicleType"] == "TRUCK"
    assert raw["ErrorCode"] == "0"
    assert "Not Applicable" not in raw.values()
    assert "" not in raw.values()
    assert len(raw) < len(result)
    json.dumps(raw)


def test_2026_tiguan_recording_with_154_fields() -> None:
    result = recorded_result(TIGUAN_2026_FILE)
    assert len(result) == 154

    decoded = decoded_from_vpic(result)

    assert decoded.valid_check_digit is True  # check digit X
    assert (decoded.make, decoded.model, decoded.model_year) == ("VOLKSWAGEN", "Tiguan", 2022)
    assert decoded.trim == "SE"
    assert decoded.body_class == "Sport Utility Vehicle [SUV]/Multipurpose Vehicle [MPV]"
    assert decoded.engine == "2.0L 4-cyl"
    assert decoded.transmission == "8-speed Automatic"
    assert decoded.plant_country == "MEXICO"
    assert decoded.error_codes == ("0",)
    assert decoded.raw["VehicleDescriptor"] == "3VV3B7AX*NM"  # a key new in the 2026 set


def test_batch_with_errors_keeps_what_decoded() -> None:
    results = recorded_content(BATCH_ERRORS_FILE)["Results"]

    bmw, tesla = (decoded_from_vpic(result) for result in results)

    assert bmw.error_codes == ("6",)
    assert (bmw.make, bmw.model, bmw.model_year, bmw.trim) == ("BMW", "X3", 2011, "xDrive35i")
    assert (bmw.engine, bmw.doors) == ("3.0L 6-cyl", 4)
    assert bmw.valid_check_digit is False  # a partial VIN has no check digit to trust

    assert tesla.error_codes == ("5", "6", "14")
    assert (tesla.make, tesla.model, tesla.model_year) == ("TESLA", "Model S", 2014)
    assert (tesla.engine, tesla.fuel_type, tesla.doors) == (None, None, 5)
    assert tesla.raw["SuggestedVIN"] == "5YJSA3D!*EF!"


def test_check_digit_error_code_marks_the_check_digit_invalid() -> None:
    result = {**recorded_result(F150_FILE), "ErrorCode": "1", "ErrorText": "reworded"}

    decoded = decoded_from_vpic(result)

    assert decoded.valid_check_digit is False
    assert decoded.error_codes == ("1",)
    assert decoded.make == "FORD"


def test_error_text_wording_does_not_matter() -> None:
    result = {**recorded_result(F150_FILE), "ErrorText": "1 - Check Digit is wrong"}

    assert decoded_from_vpic(result).valid_check_digit is True


@pytest.mark.parametrize("missing", ["", None, "Not Applicable", "  "])
def test_missing_texts_become_none(missing: str | None) -> None:
    fields = ("Trim", "Series", "EngineConfiguration", "PlantCountry")
    result = {**recorded_result(F150_FILE), **dict.fromkeys(fields, missing)}

    decoded = decoded_from_vpic(result)

    assert (decoded.trim, decoded.series, decoded.plant_country) == (None, None, None)
    assert decoded.engine == "3.5L 6-cyl"
    assert not set(fields) & set(decoded.raw)


@pytest.mark.parametrize("missing", ["", None, "Not Applicable", "0", "0.0", "n/a"])
def test_missing_numbers_become_none(missing: str | None) -> None:
    fields = ("Doors", "EngineCylinders", "DisplacementL", "TransmissionSpeeds", "ModelYear")
    result = {**recorded_result(F150_FILE), **dict.fromkeys(fields, missing)}

    decoded = decoded_from_vpic(result)

    assert (decoded.doors, decoded.cylinders, decoded.displacement_l) == (None, None, None)
    assert decoded.engine == "V-Shaped"
    assert decoded.transmission is None
    assert decoded.model_year == 2021  # from the VIN itself when vPIC gives none


# Client


async def test_decode_batch_answers_with_the_recordings(client: VpicClient, vpic: FakeVpic) -> None:
    decoded = await client.decode_batch([F150_VIN, TIGUAN_VIN.lower(), BMW_PARTIAL_VIN])

    assert list(decoded) == [F150_VIN, TIGUAN_VIN, BMW_PARTIAL_VIN]
    assert decoded[F150_VIN].model == "F-150"
    assert decoded[TIGUAN_VIN].model == "Tiguan"
    assert decoded[BMW_PARTIAL_VIN].error_codes == ("6",)
    assert vpic.batch_sizes == [3]


async def test_format_json_is_sent_in_the_post_body(client: VpicClient, vpic: FakeVpic) -> None:
    await client.decode_batch([F150_VIN, HONDA_VIN])

    [(method, path, body)] = vpic.requests
    assert (method, path) == ("POST", "/api/vehicles/DecodeVINValuesBatch/")
    assert parse_qs(body) == {"format": ["json"], "data": [f"{F150_VIN};{HONDA_VIN}"]}


async def test_fake_vpic_answers_xml_when_format_is_only_in_the_query(vpic: FakeVpic) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            vpic.base_url + "vehicles/DecodeVINValuesBatch/?format=json", data={"data": F150_VIN}
        )

    assert response.headers["content-type"] == "application/xml"


async def test_batches_are_split_at_50(client: VpicClient, vpic: FakeVpic) -> None:
    vins = generated_vins(120)

    decoded = await client.decode_batch(vins)

    assert vpic.batch_sizes == [50, 50, 20]
    assert list(decoded) == vins


async def test_duplicate_vins_are_sent_once(client: VpicClient, vpic: FakeVpic) -> None:
    decoded = await client.decode_batch([F150_VIN, f" {F150_VIN.lower()} ", F150_VIN])

    assert list(decoded) == [F150_VIN]
    assert vpic.batch_sizes == [1]


async def test_decode_one_vin_with_get(client: VpicClient, vpic: FakeVpic) -> None:
    decoded = await client.decode(BMW_PARTIAL_VIN)

    assert decoded is not None
    assert (decoded.make, decoded.model, decoded.error_codes) == ("BMW", "X3", ("6",))
    method, path, _ = vpic.requests[0]
    assert (method, path) == ("GET", f"/api/vehicles/DecodeVinValues/{BMW_PARTIAL_VIN}?format=json")


async def test_a_vin_without_a_result_is_absent(client: VpicClient, vpic: FakeVpic) -> None:
    vpic.mode = "no results"

    assert await client.decode_batch([F150_VIN]) == {}


@pytest.mark.parametrize("not_a_vin", ["1FTMW1T88;DROP", "1FTMW1T88MFA00001,2021", "", "Ö"])
async def test_strings_that_are_not_vins_are_refused(client: VpicClient, not_a_vin: str) -> None:
    with pytest.raises(ValueError, match="not a VIN"):
        await client.decode_batch([F150_VIN, not_a_vin])


@pytest.mark.parametrize(
    ("mode", "requests"), [("500", 2), ("429", 2), ("slow", 2), ("garbage", 1)]
)
async def test_vpic_unavailable(
    client: VpicClient, vpic: FakeVpic, mode: str, requests: int
) -> None:
    vpic.mode = mode

    with pytest.raises(VpicUnavailable):
        await client.decode_batch([F150_VIN])

    assert len(vpic.requests) == requests  # transient failures are retried once


async def test_one_retry_recovers_from_a_single_failure(
    client: VpicClient, vpic: FakeVpic, sleeps: RecordedSleeps
) -> None:
    vpic.next_modes.append("500")

    decoded = await client.decode_batch([F150_VIN])

    assert decoded[F150_VIN].make == "FORD"
    assert len(vpic.requests) == 2
    assert sleeps.delays == [2.0]


async def test_retry_waits_as_long_as_retry_after_asks(
    client: VpicClient, vpic: FakeVpic, sleeps: RecordedSleeps
) -> None:
    vpic.next_modes.append("429")
    vpic.retry_after = "5"

    await client.decode_batch([F150_VIN])

    assert sleeps.delays == [5.0]


async def test_a_long_retry_after_is_not_waited_for(
    client: VpicClient, vpic: FakeVpic, sleeps: RecordedSleeps
) -> None:
    vpic.mode = "429"
    vpic.retry_after = "3600"

    with pytest.raises(VpicUnavailable):
        await client.decode_batch([F150_VIN])

    assert len(vpic.requests) == 1
    assert sleeps.delays == []


async def test_requests_are_paced(vpic: FakeVpic) -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    async with VpicClient(
        base_url=vpic.base_url, min_interval=1.0, sleep=sleep, clock=lambda: now[0]
    ) as client:
        await client.decode_batch(generated_vins(120))
        now[0] += 0.25
        await client.decode_batch([F150_VIN])

    assert slept == [1.0, 1.0, 0.75]
    assert len(vpic.requests) == 4


async def test_an_injected_http_client_is_used_and_left_open(vpic: FakeVpic) -> None:
    async with httpx.AsyncClient(headers={"User-Agent": "carsearch-test"}) as http:
        async with VpicClient(http, base_url=vpic.base_url.rstrip("/"), min_interval=0) as client:
            decoded = await client.decode_batch([F150_VIN])
        assert not http.is_closed

    assert decoded[F150_VIN].model == "F-150"


# The decoder over HTTP


async def test_decoder_uses_vpic_when_it_answers(client: VpicClient) -> None:
    decoded = await VinDecoder(client).decode_many([F150_VIN, HONDA_VIN])

    assert decoded[F150_VIN].source == "vpic"
    assert decoded[HONDA_VIN].source == "vpic"


@pytest.mark.parametrize("mode", ["500", "429", "slow", "garbage", "no results"])
async def test_decoder_falls_back_to_offline(client: VpicClient, vpic: FakeVpic, mode: str) -> None:
    vpic.mode = mode

    decoded = await VinDecoder(client).decode_many([HONDA_VIN, F150_VIN])

    assert list(decoded) == [HONDA_VIN, F150_VIN]
    assert {record.source for record in decoded.values()} == {"offline"}
    assert all(record.needs_online_decode for record in decoded.values())
    assert (decoded[HONDA_VIN].make, decoded[HONDA_VIN].model) == ("Honda", "Accord")
    assert (decoded[F150_VIN].make, decoded[F150_VIN].model_year) == ("Ford", 2021)


async def test_decoder_keeps_the_batches_vpic_answered(client: VpicClient, vpic: FakeVpic) -> None:
    vins = generated_vins(60)
    vpic.next_modes.append("ok")
    vpic.mode = "500"

    decoded = await VinDecoder(client).decode_many(vins)

    assert list(decoded) == vins
    assert [decoded[vin].source for vin in vins] == ["vpic"] * 50 + ["offline"] * 10
    assert len(vpic.requests) == 3  # one batch, then one failed batch and its retry
