"""Text redaction: anything shaped like an IP address or the apps' device id becomes "[redacted]".

A second line of defence, for text the pipeline does not control (exception messages, keys of a
quarantined body): the first is that no code path puts a raw ip or device_id into text at all. It errs
towards redacting too much: a dotted quad that is no address (999.1.2.3), or "::" in other text, goes too.

It runs on every log record and on quarantined bodies, hostile input included, so its cost is linear in the
text. What is redacted is a whole run of the characters a shape is made of, one that holds the shape: each
run is scanned from its start only (the lookbehinds) and at most twice (a lookahead that finds the shape,
then a possessive match to the run's end). A pattern for the IPv6 shape alone scanned from every start to
the end of the run: a 40,000-character hex run took 31 s.
"""

import re

REDACTED = "[redacted]"

# No boundaries inside a run: an address glued to digits (one address repeated, "1.2.3.41.2.3.4") is found.
_IPV4 = r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
_DEVICE_ID = r"[0-9]{3}-[0-9]{2}-[0-9]{4}"  # the shape of the apps' device ids
_DIGIT_RUN = re.compile(rf"(?<![0-9.-])(?=[0-9.-]*?(?:{_IPV4}|{_DEVICE_ID}))[0-9.-]++")
# Every IPv6 text is a run of these characters with "::" or all eight groups (seven colons); times
# (12:30:45) have neither.
_HEX = "0-9A-Fa-f."
_IPV6_RUN = re.compile(rf"(?<![{_HEX}:])(?=[{_HEX}:]*::|(?:[{_HEX}]*+:){{7}})[{_HEX}:]++")


def pii_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of every PII-shaped run of `text`, in order, overlapping or touching ones merged."""
    spans = sorted(m.span() for pattern in (_DIGIT_RUN, _IPV6_RUN) for m in pattern.finditer(text))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def redact(text: str, values: frozenset[str] = frozenset()) -> str:
    """`text` with every occurrence of one of `values`, and every PII-shaped run, replaced."""
    for value in sorted((v for v in values if v.strip()), key=len, reverse=True):
        text = text.replace(value, REDACTED)
    parts: list[str] = []
    kept = 0
    for start, end in pii_spans(text):
        parts += (text[kept:start], REDACTED)
        kept = end
    return "".join(parts) + text[kept:] if parts else text
