import pytest

from clinical_core.adapters.vault import AesGcmVault, decode_master_key, generate_master_key
from clinical_core.domain.errors import ConfigurationError


def test_round_trip_with_random_nonces() -> None:
    vault = AesGcmVault(decode_master_key(generate_master_key()))
    a, b = vault.encrypt("13812345678"), vault.encrypt("13812345678")
    assert a != b and "13812345678" not in a
    assert vault.decrypt(a) == vault.decrypt(b) == "13812345678"


def test_lookup_hash_is_keyed_and_domain_separated() -> None:
    one = AesGcmVault(decode_master_key(generate_master_key()))
    two = AesGcmVault(decode_master_key(generate_master_key()))
    assert one.lookup_hash("phone", "13812345678") == one.lookup_hash("phone", "13812345678")
    assert one.lookup_hash("phone", "13812345678") != two.lookup_hash("phone", "13812345678")
    assert one.lookup_hash("phone", "1") != one.lookup_hash("id_card", "1")


def test_wrong_key_is_a_clear_configuration_error() -> None:
    token = AesGcmVault(decode_master_key(generate_master_key())).encrypt("x")
    with pytest.raises(ConfigurationError, match="密钥"):
        AesGcmVault(decode_master_key(generate_master_key())).decrypt(token)


@pytest.mark.parametrize("bad", ["short", "!!!!", ""])
def test_malformed_keys(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        decode_master_key(bad)
