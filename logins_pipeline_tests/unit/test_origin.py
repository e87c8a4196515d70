"""The origin a redrive attaches: only one made with the masking key is believed."""

import dataclasses

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.origin import origin_of, with_origin

KEY = MaskingKey.from_secret(bytes(range(32)))
FIRST = ReceivedMessage("first-id", "receipt-1", 1_700_000_000_000, 6, "{}")
COPY = ReceivedMessage("new-id", "receipt-2", 1_800_000_000_000, 1, "{}", origin=origin_of(FIRST, KEY))


def test_a_redriven_copy_is_the_first_message_again():
    resolved = with_origin(COPY, KEY)
    assert (resolved.message_id, resolved.sent_timestamp_ms) == ("first-id", 1_700_000_000_000)
    assert (resolved.receipt_handle, resolved.receive_count) == ("receipt-2", 1)  # SQS's, for the delete
    assert with_origin(dataclasses.replace(COPY, origin=origin_of(resolved, KEY)), KEY) == resolved


def test_a_message_without_an_origin_is_unchanged():
    assert with_origin(FIRST, KEY) is FIRST


def test_a_forged_or_malformed_origin_is_ignored():
    other_key = MaskingKey.from_secret(bytes(range(1, 33)))
    forged = [
        origin_of(FIRST, other_key),
        "first-id 1700000000000 " + "0" * 64,
        origin_of(FIRST, KEY).replace("1700000000000", "1600000000000"),
        "first-id x " + origin_of(FIRST, KEY).split(" ")[2],
        "first-id",
        "",
    ]
    for origin in forged:
        message = dataclasses.replace(COPY, origin=origin)
        assert with_origin(message, KEY) is message, origin
