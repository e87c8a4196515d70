"""Secret keys from the environment: base64 of at least 32 random bytes (`openssl rand -base64 32`).

Keys made by `logins-pipeline up` carry the prefix "dev:" and are refused unless LOGINS_ENVIRONMENT is
"development", so a development key cannot reach production by accident. There is no key constant
anywhere in the code.
"""

import base64
import binascii
import hashlib
import hmac
import secrets

MIN_KEY_BYTES = 32
DEV_KEY_PREFIX = "dev:"


class KeyConfigError(ValueError):
    """A key is missing, malformed, too short, or a development key outside development."""


def parse_secret(text: str | None, variable: str, *, development: bool) -> bytes:
    """The secret bytes of the key in environment variable `variable`, or KeyConfigError (one line)."""
    if not text or not text.strip():
        raise KeyConfigError(f"{variable} is not set (generate one with: openssl rand -base64 32)")
    text = text.strip()
    if text.startswith(DEV_KEY_PREFIX) and not development:
        raise KeyConfigError(f"{variable} is a development key; refusing it outside LOGINS_ENVIRONMENT=development")
    try:
        secret = base64.b64decode(text.removeprefix(DEV_KEY_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{variable} is not valid base64") from None
    if len(secret) < MIN_KEY_BYTES:
        raise KeyConfigError(f"{variable} must decode to at least {MIN_KEY_BYTES} bytes, got {len(secret)}")
    return secret


def fingerprint(secret: bytes, label: bytes) -> str:
    """A short id that names a key in stored rows without revealing it."""
    return hmac.new(secret, label, hashlib.sha256).hexdigest()[:16]


def development_key() -> str:
    """A new random key in the development format (only `logins-pipeline up` makes these)."""
    return DEV_KEY_PREFIX + base64.b64encode(secrets.token_bytes(MIN_KEY_BYTES)).decode()
