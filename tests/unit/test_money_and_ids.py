import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.money import format_fen, yuan_to_fen


@given(st.integers(-10**9, 10**9))
def test_fen_round_trips_through_text(fen: int) -> None:
    assert yuan_to_fen(format_fen(fen).replace("¥", "").replace(",", "")) == fen


@pytest.mark.parametrize("bad", ["", "1.234", "abc", "1.2.3"])
def test_bad_amounts(bad: str) -> None:
    with pytest.raises(InvalidInput):
        yuan_to_fen(bad)


def test_public_ids_are_random_and_prefixed() -> None:
    ids = {new_public_id("pat") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(i.startswith("pat_") and len(i) == 28 for i in ids)
