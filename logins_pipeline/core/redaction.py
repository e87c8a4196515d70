"""Text redaction: anything shaped like an IP address or the apps' device id becomes "[redacted]".

A second line of defence, for text the pipeline does not control (exception messages, other fields of a
quarantined body): the first is that no code path puts a raw ip or device_id into text at all. It errs
towards redacting too much: a dotted quad that is no address (999.1.2.3), or "::" in other text, goes too.
"""

import re

REDACTED = "[redacted]"

# No boundaries: an address glued to digits (one address repeated, "1.2.3.41.2.3.4") is still found.
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
# Every IPv6 text has "::" or all eight groups (seven colons); times (12:30:45) have neither.
_IPV6 = r"[0-9A-Fa-f.:]*::[0-9A-Fa-f.:]*|[0-9A-Fa-f.]*(?::[0-9A-Fa-f.]*){7,}"
_DEVICE_ID = r"[0-9]{3}-[0-9]{2}-[0-9]{4}"  # the shape of the apps' device ids
PII_SHAPES = re.compile(f"{_IPV4}|{_IPV6}|{_DEVICE_ID}")


def redact(text: str, values: frozenset[str] = frozenset()) -> str:
    """`text` with every PII-shaped part, and every occurrence of one of `values`, replaced."""
    for value in sorted((v for v in values if v.strip()), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return PII_SHAPES.sub(REDACTED, text)
