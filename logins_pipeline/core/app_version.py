"""Lossless, order-preserving encoding of "major[.minor[.patch]]" into the table's integer column.

    encoded = major * 1_000_000 + minor * 1_000 + patch

Each of minor and patch is 0..999; major is bounded by Postgres's integer (2**31 - 1). Anything else
(a fourth part, a "v" prefix, a pre-release suffix, a component too large) is rejected: it could not be
stored without losing information. Missing parts count as 0, so "3.7" and "3.7.0" are the same version.
"""

import functools
import re

INT32_MAX = 2**31 - 1
SHORT = 32  # characters
_VERSION = re.compile(r"(\d{1,10})(?:\.(\d{1,3})(?:\.(\d{1,3}))?)?", re.ASCII)


class InvalidAppVersion(ValueError):
    """The text is not a version this encoding can store losslessly."""


def encode_app_version(text: str) -> int:
    # Few versions are in use at any time, and this runs once per message. Only short texts are cached:
    # a version padded with megabytes of spaces is valid too, and must not fill memory.
    return _encode_short(text) if len(text) <= SHORT else _encode(text)


def _encode(text: str) -> int:
    match = _VERSION.fullmatch(text.strip())
    if match is None:
        raise InvalidAppVersion("app_version must be MAJOR[.MINOR[.PATCH]] with numeric parts, minor/patch <= 999")
    major, minor, patch = (int(part or 0) for part in match.groups())
    encoded = major * 1_000_000 + minor * 1_000 + patch
    if encoded > INT32_MAX:
        raise InvalidAppVersion(f"app_version major part too large (encoded value exceeds {INT32_MAX})")
    return encoded


_encode_short = functools.lru_cache(maxsize=1024)(_encode)


def decode_app_version(encoded: int) -> str:
    """The inverse of encode_app_version, always in three parts ("3.7" comes back as "3.7.0")."""
    if not 0 <= encoded <= INT32_MAX:
        raise ValueError(f"not an encoded app_version: {encoded}")
    return f"{encoded // 1_000_000}.{encoded // 1_000 % 1_000}.{encoded % 1_000}"
