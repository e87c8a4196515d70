"""The conservative filter for error text that goes to logs and alerts."""

import pytest

from logins_pipeline.errors import MAX_LENGTH, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MaskingKeyError: LOGINS_MASKING_KEY is too short", "MaskingKeyError: LOGINS_MASKING_KEY is too short"),
        ("login from 203.0.113.9 rejected", "login from <ip> rejected"),
        ("login from 2001:db8::7 rejected", "login from <ip> rejected"),
        ("device 123-45-6789 seen", "device <number> seen"),
        ("user 00000000-0000-4000-8000-000000000135", "user <id>"),
        ('invalid input syntax for type integer: "2.3.0"', "invalid input syntax for type integer: <quoted>"),
        ("Key (message_id)=(abc) already exists.", "Key (message_id)=(<value>) already exists."),
        ("cannot reach postgresql://postgres:secret@db:5432/logins now", "cannot reach <url> now"),
        ("mail someone@example.com", "mail <email>"),
        ("first line\nsecond line with 203.0.113.9", "first line"),
    ],
)
def test_redact(text, expected):
    assert redact(text) == expected


def test_redact_is_bounded():
    assert len(redact("x" * 10_000)) == MAX_LENGTH
