"""app_version <-> integer: lossless, order-preserving, and strict about what it cannot store."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logins_pipeline.core.app_version import (
    INT32_MAX,
    InvalidAppVersion,
    decode_app_version,
    encode_app_version,
)

majors = st.integers(0, 2146)
parts = st.integers(0, 999)
versions = st.tuples(majors, parts, parts)


def text(version: tuple[int, int, int]) -> str:
    return ".".join(map(str, version))


@given(versions)
def test_round_trip(version):
    assert decode_app_version(encode_app_version(text(version))) == text(version)


@given(versions, versions)
def test_order_preserved(a, b):
    ea, eb = encode_app_version(text(a)), encode_app_version(text(b))
    assert (a < b) == (ea < eb)
    assert (a == b) == (ea == eb)


@given(majors, parts)
def test_two_parts_mean_patch_zero(major, minor):
    assert encode_app_version(f"{major}.{minor}") == encode_app_version(f"{major}.{minor}.0")


@given(majors)
def test_one_part_means_major_only(major):
    assert encode_app_version(str(major)) == encode_app_version(f"{major}.0.0") == major * 1_000_000


@given(st.integers(0, INT32_MAX))
def test_decode_then_encode(encoded):
    assert encode_app_version(decode_app_version(encoded)) == encoded


@pytest.mark.parametrize(
    "version, encoded",
    [
        ("0.96", 96_000),
        ("3.7", 3_007_000),
        ("2.00", 2_000_000),
        ("2.3.0", 2_003_000),
        ("0.0.0", 0),
        ("2147.483.647", INT32_MAX),
    ],
)
def test_known_values(version, encoded):
    assert encode_app_version(version) == encoded


@pytest.mark.parametrize("version, decoded", [("0.96", "0.96.0"), ("3.7", "3.7.0"), ("2.00", "2.0.0")])
def test_sample_two_part_versions(version, decoded):
    assert decode_app_version(encode_app_version(version)) == decoded


@pytest.mark.parametrize("version", [" 1.2.3", "1.2.3 ", "\t1.2\n", "  7  "])
def test_surrounding_whitespace_ignored(version):
    assert encode_app_version(version) == encode_app_version(version.strip())


@pytest.mark.parametrize(
    "version",
    [
        "1.2.3.4",
        "v1.2",
        "1.2.3-beta",
        "",
        " ",
        "1.1000",
        "1.2.1000",
        "-1",
        "+1",
        "2148.0.0",
        "2147.483.648",
        "99999999999",
        "1.",
        ".1",
        "1..2",
        "1 .2",
        "1. 2",
        "1.2 3",
        "1,2",
        "\u0661.\u0662",  # Arabic-Indic digits
        "1.2.3\x00",
    ],
)
def test_rejected(version):
    with pytest.raises(InvalidAppVersion):
        encode_app_version(version)


def test_invalid_is_a_value_error():
    assert issubclass(InvalidAppVersion, ValueError)


@pytest.mark.parametrize("encoded", [-1, -1_000_000, INT32_MAX + 1, 2**63])
def test_decode_rejects_out_of_range(encoded):
    with pytest.raises(ValueError):
        decode_app_version(encoded)


def test_decode_bounds():
    assert decode_app_version(0) == "0.0.0"
    assert decode_app_version(INT32_MAX) == "2147.483.647"
