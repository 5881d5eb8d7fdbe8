from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.masking import mask_address, mask_id_card, mask_identifier, mask_name, mask_phone


def test_phone_keeps_prefix_and_last_four() -> None:
    assert mask_phone("13812345678") == "138****5678"


def test_id_card_keeps_three_and_four() -> None:
    assert mask_id_card("440305199001011234") == "440***********1234"


def test_names_and_addresses() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_address("广东省深圳市南山区粤海街道科技园路1号") == "广东省深圳市********"
    assert mask_identifier("SZ0012345678") == "********5678"


@given(st.text(min_size=8, max_size=40))
def test_long_values_never_come_out_verbatim(value: str) -> None:
    for mask in (mask_phone, mask_id_card, mask_identifier):
        out = mask(value)
        assert out != value.strip() or len(set(value.strip())) <= 1 and value.strip()[:1] == "*"
        assert "*" in out


def test_empty_is_empty() -> None:
    assert mask_phone(None) == mask_id_card("") == mask_name(None) == mask_address(None) == ""
