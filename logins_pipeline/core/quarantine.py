"""The masked body of a quarantined message: what is kept of it for diagnosis, with no plaintext PII.

An allow-list, not a deny-list: a message is quarantined exactly when an app sends something unexpected (a
renamed field: `deviceId`, `ip_address`, `{"client": {"addr": ...}}`), so only the login's fields known to
be safe keep their text. Of a parsed body:

- a string of a top-level SAFE_FIELDS field is kept, with the body's own ip/device_id values and anything
  shaped like an address or device id redacted;
- an `ip` or `device_id` value, at any depth and in any case, becomes its token, the one user_logins has;
- every other value becomes a keyed token that says its type: "tok:s:<hex>" for a string, "tok:n:" for a
  number, "tok:b:" for a boolean (null stays null). Equal values give equal tokens, so a debugger still
  sees which fields agree, and nobody without the key learns a value;
- keys are kept, redacted like the safe strings.

Its cost is linear in the body (core/redaction.py): a body with more than MAX_PII_VALUES distinct ip and
device_id values, which no login has, would make every key a search for each of them, and is kept, like a
body that is not an object, only as its size and a keyed hash.
"""

import contextlib
import json
from typing import Any

from logins_pipeline.core.masking import MaskingKey, canonical_ip, normalise_device_id, token
from logins_pipeline.core.redaction import redact

SAFE_FIELDS = frozenset({"user_id", "app_version", "device_type", "locale"})
PII_FIELDS = frozenset({"ip", "device_id"})
MAX_PII_VALUES = 32
VALUE_TOKEN_LENGTH = 16  # hex characters: 64 bits tell values apart for diagnosis; the rows' tokens are whole
_TYPE_TAGS = {str: "s", int: "n", float: "n", bool: "b"}


class _TooManyPiiValues(Exception):
    pass


def _collect_pii_values(value: object, found: set[str]) -> None:
    """Add the text of every `ip`/`device_id` value in a parsed body, at any depth, as sent and trimmed."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name.lower() in PII_FIELDS and isinstance(item, str):
                found.update((item, item.strip()))
            elif name.lower() in PII_FIELDS and type(item) in (int, float):
                found.add(json.dumps(item))
            if len(found) > MAX_PII_VALUES:
                raise _TooManyPiiValues
            _collect_pii_values(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_pii_values(item, found)


def _pii_token(name: str, value: object, key: MaskingKey) -> str:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = canonical_ip(value) if name == "ip" else normalise_device_id(value)
        return token(key, name, value)
    return token(key, name, json.dumps(value, sort_keys=True))


def _value_token(value: object, key: MaskingKey, values: frozenset[str]) -> object:
    """A value as tokens, its structure kept: a container's keys are redacted, not tokenised."""
    if isinstance(value, dict | list):
        return _mask(value, key, values, top_level=False)
    if value is None:
        return None
    return f"tok:{_TYPE_TAGS[type(value)]}:{token(key, 'quarantine', json.dumps(value))[:VALUE_TOKEN_LENGTH]}"


def _mask(value: dict[str, Any] | list[Any], key: MaskingKey, values: frozenset[str], top_level: bool) -> object:
    if isinstance(value, list):
        return [_value_token(item, key, values) for item in value]
    masked = {}
    for name, item in value.items():
        field = name.lower()
        masked_item: object
        if field in PII_FIELDS:
            masked_item = _pii_token(field, item, key)
        elif top_level and name in SAFE_FIELDS and isinstance(item, str):
            masked_item = redact(item, values)
        else:
            masked_item = _value_token(item, key, values)
        masked[redact(name, values)] = masked_item
    return masked


def masked_body(event: dict[str, Any] | None, key: MaskingKey) -> str | None:
    """The JSON text kept of a quarantined body; None for a body that is not an object, or whose masking
    would cost more than linear time or recursion allows."""
    if event is None:
        return None
    values: set[str] = set()
    try:
        _collect_pii_values(event, values)
        return json.dumps(_mask(event, key, frozenset(values), top_level=True), ensure_ascii=True)
    except (_TooManyPiiValues, RecursionError):
        return None
