"""The vault's AES-SIV encryption: deterministic, authenticated, bound to its row and field."""

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logins_pipeline.core.keys import KeyConfigError
from logins_pipeline.core.vault import VaultError, VaultKey, parse_vault_key

KEY = VaultKey.from_secret(bytes(range(32)))
OTHER_KEY = VaultKey.from_secret(b"\xff" * 32)
IP, DEVICE_ID = "192.0.2.135", "900-00-0135"


def test_round_trip_keeps_the_value_as_received():
    entry = KEY.seal_login("m-1", f" {IP} ", f"{DEVICE_ID}\n")
    assert KEY.open_login(entry) == (f" {IP} ", f"{DEVICE_ID}\n")


@given(st.text(), st.text(min_size=1))
def test_any_text_round_trips(value, message_id):
    assert KEY.open("device_id", message_id, KEY.seal("device_id", message_id, value)) == value


def test_lone_surrogates_round_trip():
    assert KEY.open("device_id", "m", KEY.seal("device_id", "m", "a\ud800b")) == "a\ud800b"


def test_deterministic_for_a_row_field_and_value():
    assert KEY.seal("ip", "m-1", IP) == KEY.seal("ip", "m-1", IP)
    assert KEY.seal_login("m-1", IP, DEVICE_ID) == KEY.seal_login("m-1", IP, DEVICE_ID)


def test_ciphertext_is_bound_to_its_row_and_field():
    sealed = KEY.seal("ip", "m-1", IP)
    assert KEY.seal("ip", "m-2", IP) != sealed
    assert KEY.seal("device_id", "m-1", IP) != sealed
    with pytest.raises(VaultError):
        KEY.open("ip", "m-2", sealed)  # moved to another row
    with pytest.raises(VaultError):
        KEY.open("device_id", "m-1", sealed)  # moved to another field


def test_altered_ciphertext_does_not_open():
    sealed = bytearray(KEY.seal("ip", "m-1", IP))
    sealed[-1] ^= 1
    with pytest.raises(VaultError, match="does not open"):
        KEY.open("ip", "m-1", bytes(sealed))


def test_another_key_neither_matches_nor_opens():
    entry = KEY.seal_login("m-1", IP, DEVICE_ID)
    assert OTHER_KEY.seal_login("m-1", IP, DEVICE_ID).ip != entry.ip
    with pytest.raises(VaultError, match="key id"):
        OTHER_KEY.open_login(entry)
    with pytest.raises(VaultError):
        OTHER_KEY.open("ip", "m-1", entry.ip)


def test_no_plaintext_in_ciphertext_or_repr():
    entry = KEY.seal_login("m-1", IP, DEVICE_ID)
    for text in (entry.ip, entry.device_id, repr(entry).encode(), repr(KEY).encode()):
        assert IP.encode() not in text and DEVICE_ID.encode() not in text
    assert entry.key_id == KEY.key_id and KEY.key_id in repr(entry)


def test_key_id_differs_from_the_masking_key_id_of_the_same_secret():
    from logins_pipeline.core.masking import MaskingKey

    assert KEY.key_id != MaskingKey.from_secret(bytes(range(32))).key_id


@pytest.mark.parametrize(
    "text, match",
    [
        (None, "LOGINS_VAULT_KEY is not set"),
        ("dev:" + base64.b64encode(bytes(32)).decode(), "LOGINS_VAULT_KEY is a development key"),
        (base64.b64encode(bytes(31)).decode(), "at least 32 bytes"),
        ("not base64!", "not valid base64"),
    ],
)
def test_unusable_keys_are_refused_in_one_line(text, match):
    with pytest.raises(KeyConfigError, match=match) as error:
        parse_vault_key(text, development=False)
    assert "\n" not in str(error.value)


def test_development_key_accepted_in_development():
    secret = bytes(range(32))
    key = parse_vault_key("dev:" + base64.b64encode(secret).decode(), development=True)
    assert key.key_id == KEY.key_id
