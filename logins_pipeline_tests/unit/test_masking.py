"""The masking key, keyed tokens, and canonical IP text."""

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logins_pipeline.core.keys import KeyConfigError
from logins_pipeline.core.masking import (
    TOKEN_PATTERN,
    MaskingKey,
    canonical_ip,
    parse_masking_key,
    token,
)

SECRET = bytes(range(32))
B64 = base64.b64encode(SECRET).decode()
KEY = MaskingKey.from_secret(SECRET)
OTHER_KEY = MaskingKey.from_secret(b"\xff" * 32)


# --- parse_masking_key ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", " ", "\n\t "])
def test_missing_key(text):
    with pytest.raises(KeyConfigError):
        parse_masking_key(text, development=True)


@pytest.mark.parametrize("text", ["not base64!!", B64[:-1], B64 + "*", "dev:" + "%%%%"])
def test_not_base64(text):
    with pytest.raises(KeyConfigError, match="base64"):
        parse_masking_key(text, development=True)


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_too_short(size):
    text = base64.b64encode(bytes(size)).decode() or "===="
    with pytest.raises(KeyConfigError):
        parse_masking_key(text, development=True)


def test_key_error_is_value_error():
    assert issubclass(KeyConfigError, ValueError)


def test_valid_key():
    key = parse_masking_key(B64, development=False)
    assert key.secret == SECRET
    assert key == KEY


def test_surrounding_whitespace_ignored():
    assert parse_masking_key(f"  {B64}\n", development=False) == KEY


def test_dev_key_refused_outside_development():
    with pytest.raises(KeyConfigError, match="development"):
        parse_masking_key("dev:" + B64, development=False)


def test_dev_key_accepted_in_development():
    assert parse_masking_key("dev:" + B64, development=True) == KEY


@given(st.binary(min_size=32, max_size=128))
def test_any_long_secret_parses(secret):
    assert parse_masking_key(base64.b64encode(secret).decode(), development=False).secret == secret


def test_key_id_stable():
    assert parse_masking_key(B64, development=False).key_id == parse_masking_key(B64, development=False).key_id
    assert KEY.key_id != OTHER_KEY.key_id


def test_key_id_does_not_reveal_secret():
    assert re.fullmatch(r"[0-9a-f]{16}", KEY.key_id)
    for revealing in (B64, SECRET.hex(), B64[:16], SECRET.hex()[:16]):
        assert revealing not in KEY.key_id


def test_repr_hides_secret():
    text = repr(KEY) + str(KEY)
    assert KEY.key_id in text
    for revealing in (B64, SECRET.hex(), repr(SECRET)):
        assert revealing not in text


# --- token ----------------------------------------------------------------------------------------


def test_token_deterministic():
    assert token(KEY, "ip", "1.2.3.4") == token(KEY, "ip", "1.2.3.4")


def test_token_shape():
    assert re.fullmatch(TOKEN_PATTERN, token(KEY, "ip", "1.2.3.4"))
    assert len(token(KEY, "ip", "")) == 64


def test_token_differs_by_domain():
    assert token(KEY, "ip", "x") != token(KEY, "device_id", "x")


def test_token_differs_by_key():
    assert token(KEY, "ip", "1.2.3.4") != token(OTHER_KEY, "ip", "1.2.3.4")


def test_token_str_equals_utf8_bytes():
    assert token(KEY, "device_id", "é") == token(KEY, "device_id", "é".encode())


@given(st.text(), st.text())
def test_token_injective_in_practice(a, b):
    assert (token(KEY, "ip", a) == token(KEY, "ip", b)) == (a == b)
    assert re.fullmatch(TOKEN_PATTERN, token(KEY, "ip", a))


def test_token_not_the_value():
    assert "1.2.3.4" not in token(KEY, "ip", "1.2.3.4")


# --- token against the standard library's HMAC -------------------------------------------------------
# token() is a hand-written HMAC (precomputed key states). Each RFC 4231 key below first pins hmac.new to the
# RFC's published digest, then token() must equal hmac.new over our domain separation: "<domain> NUL value".

RFC_4231 = [  # (test case, key, data, HMAC-SHA-256 as published; case 5 is published truncated to 128 bits)
    (1, b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (2, b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (3, b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (4, bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (5, b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (
        6,
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        7,
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. The key"
        b" needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]
VALUES = [
    ("ip", "192.0.2.1"),
    ("ip", "2001:db8::1"),
    ("device_id", "123-45-6789"),
    ("device_id", ""),
    ("device_id", "é\u0301 " * 40),
    ("body", "x" * 200),
]


@pytest.mark.parametrize("case, secret, data, published", RFC_4231, ids=[f"rfc4231-{c[0]}" for c in RFC_4231])
@pytest.mark.parametrize("domain, value", VALUES)
def test_token_is_hmac_sha256_of_domain_nul_value(case, secret, data, published, domain, value):
    assert hmac.new(secret, data, hashlib.sha256).hexdigest().startswith(published)
    expected = hmac.new(secret, domain.encode() + b"\x00" + value.encode(), hashlib.sha256).hexdigest()
    assert token(MaskingKey.from_secret(secret), domain, value) == expected


@given(st.binary(max_size=200), st.sampled_from(["ip", "device_id", "body"]), st.text())
def test_token_agrees_with_hmac_new(secret, domain, value):
    expected = hmac.new(secret, f"{domain}\0{value}".encode("utf-8", "surrogatepass"), hashlib.sha256)
    assert token(MaskingKey.from_secret(secret), domain, value) == expected.hexdigest()


def test_token_known_answer():
    """Pinned: a change of the construction would silently make new tokens unequal to the stored ones."""
    assert token(KEY, "ip", "192.0.2.1") == "269d60a183d7c9b4ad7a12cfafe2ee3437f20db8cdec03b2ad9bc18d74db0c53"


# --- canonical_ip ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("1.2.3.4", "1.2.3.4"),
        ("192.0.2.135", "192.0.2.135"),
        ("  1.2.3.4 ", "1.2.3.4"),
        ("\t10.0.0.1\n", "10.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::1", "::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::FFFF:1.2.3.4", "1.2.3.4"),
        ("::ffff:0102:0304", "1.2.3.4"),
        ("0:0:0:0:0:ffff:102:304", "1.2.3.4"),
    ],
)
def test_canonical_ip(text, canonical):
    assert canonical_ip(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.04",
        "",
        " ",
        "example.com",
        "1.2.3",
        "1.2.3.4.5",
        "1.2.3.4/24",
        "-1.2.3.4",
        "2001:db8::1::2",
        "gggg::1",
        "1.2.3.4 5",
    ],
)
def test_invalid_ip(text):
    with pytest.raises(ValueError):
        canonical_ip(text)


@given(st.integers(0, 2**32 - 1))
def test_ipv4_notations_agree(number):
    a = ".".join(str(number >> s & 255) for s in (24, 16, 8, 0))
    assert canonical_ip(a) == canonical_ip(f"::ffff:{a}") == canonical_ip(f" {a} ") == a


@given(st.integers(0, 2**128 - 1))
def test_ipv6_notations_agree(number):
    exploded = ":".join(f"{number >> s & 0xFFFF:04x}" for s in range(112, -1, -16))
    canonical = canonical_ip(exploded)
    assert canonical == canonical_ip(exploded.upper()) == canonical_ip(canonical)
    assert canonical == canonical.lower()


def test_ipv6_zone_index_is_not_a_login_address():
    with pytest.raises(ValueError):
        canonical_ip("fe80::1%eth0")
