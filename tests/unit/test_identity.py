from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.identity import id_card_check_digit, normalise_phone, parse_id_card


def test_known_valid_id_card() -> None:
    # The GB 11643 example number.
    card = parse_id_card("11010519491231002x")
    assert card.number == "11010519491231002X"
    assert card.birth_date == date(1949, 12, 31)
    assert card.sex == "F"
    assert card.age_on(date(2026, 11, 2)) == 76


def test_wrong_check_digit_is_refused() -> None:
    with pytest.raises(InvalidInput, match="校验位"):
        parse_id_card("110105194912310021")


@pytest.mark.parametrize("raw", ["", "12345", "11010519491231002Y", "110105194913310028"])
def test_malformed_id_cards(raw: str) -> None:
    with pytest.raises(InvalidInput):
        parse_id_card(raw if raw != "110105194913310028" else raw[:17] + id_card_check_digit(raw[:17]))


@given(st.dates(min_value=date(1920, 1, 1), max_value=date(2025, 12, 31)), st.integers(0, 999))
def test_every_generated_number_parses(born: date, seq: int) -> None:
    first17 = f"440305{born:%Y%m%d}{seq:03d}"
    card = parse_id_card(first17 + id_card_check_digit(first17))
    assert card.birth_date == born
    assert card.sex == ("M" if seq % 2 else "F")


def test_phone_normalisation() -> None:
    assert normalise_phone("+86 138-1234-5678") == "13812345678"
    with pytest.raises(InvalidInput, match="手机号"):
        normalise_phone("12812345678")
