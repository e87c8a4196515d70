"""Error text that is safe to send to logs and alerts: one line, with anything that looks like a value removed.

Errors raised in this codebase never quote a value, but a library's message might (a driver echoing a
literal, a URL with credentials): the filter errs on the side of removing too much.
"""

import re

MAX_LENGTH = 300
# (pattern, replacement), applied in order: the URL rule runs before the e-mail rule, which would
# otherwise eat `user:password@host`.
_REDACTIONS = [
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE), "<url>"),
    (re.compile(r"\S+@\S+"), "<email>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"\b[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,}\b", re.IGNORECASE), "<ip>"),
    (re.compile(r"\d[\d-]{4,}\d"), "<number>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<quoted>"),
    (re.compile(r"=\([^)]*\)"), "=(<value>)"),
]


def redact(text: str) -> str:
    """The first line of `text`, without URLs, e-mails, UUIDs, IP addresses, long numbers or quoted text."""
    lines = text.strip().splitlines()
    line = lines[0] if lines else ""
    for pattern, replacement in _REDACTIONS:
        line = pattern.sub(replacement, line)
    return line[:MAX_LENGTH]


def innermost_message(error) -> str:
    """The message of the innermost cause of a Dagster SerializableErrorInfo (Dagster wraps the real error)."""
    while error.cause:
        error = error.cause
    return error.message
