"""Keyed, deterministic tokens for PII: HMAC-SHA-256 over a normalised value.

The same value always gives the same token under one key (analysts can still find duplicates), but
without the key nobody can recompute a token, so enumerating all 2**32 IPv4 addresses finds nothing.
Each field has its own domain ("ip", "device_id", ...) so equal strings in different fields do not
produce equal tokens.
"""

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

from logins_pipeline import settings
from logins_pipeline.core.keys import fingerprint, parse_secret

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)
TOKEN_LENGTH = 64
TOKEN_PATTERN = r"^[0-9a-f]{64}\Z"  # \Z, not $: "$" also matches before a final newline


@dataclass(frozen=True)
class MaskingKey:
    secret: bytes = field(repr=False)
    key_id: str  # a fingerprint that names the key in each row without revealing it
    # HMAC's keyed inner and outer SHA-256 states (RFC 2104), computed once: copying them makes a token
    # in half the time hmac.new takes, and tokens are made twice per message.
    _inner: "hashlib._Hash" = field(repr=False, compare=False)
    _outer: "hashlib._Hash" = field(repr=False, compare=False)
    # The inner state with "<domain> NUL" absorbed too, per domain, made on first use.
    _domain_states: "dict[str, hashlib._Hash]" = field(init=False, repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_secret(cls, secret: bytes) -> "MaskingKey":
        key_id = fingerprint(secret, b"logins_pipeline key id")
        block = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\x00")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        return cls(secret=secret, key_id=key_id, _inner=inner, _outer=outer)


def parse_masking_key(text: str | None, *, development: bool) -> MaskingKey:
    """Decode LOGINS_MASKING_KEY (see core.keys for the format); KeyConfigError if it is unusable."""
    return MaskingKey.from_secret(parse_secret(text, settings.MASKING_KEY, development=development))


def token(key: MaskingKey, domain: str, value: str | bytes) -> str:
    """HMAC-SHA-256(key, domain NUL value) as 64 hex characters."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    domain_state = key._domain_states.get(domain)
    if domain_state is None:
        domain_state = key._inner.copy()
        domain_state.update(domain.encode() + b"\x00")
        key._domain_states[domain] = domain_state
    inner = domain_state.copy()
    inner.update(data)
    outer = key._outer.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


def canonical_ip(text: str) -> str:
    """Canonical text of an IP address: IPv6 compressed and lower case, IPv4-mapped IPv6 as IPv4.

    Raises ValueError for anything that is not an address (hostnames, leading zeros, out of range).
    """
    text = text.strip()
    if _CANONICAL_IPV4.fullmatch(text):  # the common case, already canonical: skip ipaddress (10x slower)
        return text
    address = ipaddress.ip_address(text)
    if getattr(address, "scope_id", None):
        raise ValueError("a zone index (fe80::1%eth0) is not a login address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.compressed


def normalise_device_id(text: str) -> str:
    return text.strip()


def pii_tokens(key: MaskingKey, ip: str, device_id: str) -> tuple[str, str]:
    """The (masked_ip, masked_device_id) of a login: ingest and token rotation both make them here."""
    return token(key, "ip", canonical_ip(ip)), token(key, "device_id", normalise_device_id(device_id))
