from __future__ import annotations

import pytest

from carsearch.listings.vin import (
    check_digit,
    has_vin_shape,
    is_valid_vin,
    model_year,
    with_check_digit,
    year_code,
)


@pytest.mark.parametrize(
    "vin",
    ["1HGCM82633A004352", "1FTMW1T88MFA00001", "3VV3B7AXXNM077525", "11111111111111111"],
)
def test_real_vins_pass_the_check_digit(vin: str) -> None:
    assert is_valid_vin(vin)


def test_a_wrong_check_digit_is_caught() -> None:
    assert not is_valid_vin("1HGCM82643A004352")
    assert check_digit("1HGCM82643A004352") == "3"


@pytest.mark.parametrize(
    "text", ["", "1HGCM82633A00435", "1HGCM82633A0043520", "1HGCM8263OA004352", "1hgcm82633a004352"]
)
def test_shape_rejects_wrong_length_letters_i_o_q_and_lowercase(text: str) -> None:
    assert not has_vin_shape(text)


def test_with_check_digit_repairs_position_nine() -> None:
    assert with_check_digit("1HGCM82603A004352") == "1HGCM82633A004352"


def test_position_seven_decides_the_thirty_year_cycle() -> None:
    assert model_year("1HGCM82633A004352") == 2003  # digit at 7: 1980-2009
    assert model_year("1FTMW1T88MFA00001") == 2021  # letter at 7: 2010-2039
    assert model_year(with_check_digit("1FTMW1588AFA00001")) == 1980


def test_year_codes_round_trip() -> None:
    for year in range(2010, 2040):
        vin = with_check_digit(f"1FTMW1T80{year_code(year)}FA00001")
        assert model_year(vin) == year
    with pytest.raises(ValueError, match="no VIN code"):
        year_code(1979)
