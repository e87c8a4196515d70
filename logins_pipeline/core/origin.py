"""Where a redriven message came from, so that a redrive neither doubles a login nor changes its date.

A message sent again gets a new MessageId and SentTimestamp (AWS's own redrive is reported to do the same),
so a message moved back from the dead-letter queue would no longer be a no-op if it had been stored
before, and its create_date would become the day of the redrive. `logins-pipeline redrive` therefore
sends it with the message attribute LoginsOrigin = "<first id> <first SentTimestamp ms> <HMAC>", and the
drain stores it under that id and timestamp. The HMAC, made with the masking key, means only the pipeline
can set an origin: one forged by a producer is ignored.
"""

import dataclasses
import hmac

from logins_pipeline.core.masking import MaskingKey, token
from logins_pipeline.core.messages import ReceivedMessage

ORIGIN_ATTRIBUTE = "LoginsOrigin"


def _signature(key: MaskingKey, message_id: str, sent_ms: str) -> str:
    return token(key, "origin", f"{message_id} {sent_ms}")


def origin_of(message: ReceivedMessage, key: MaskingKey) -> str:
    """The LoginsOrigin value for `message` (resolved with `with_origin` first, so it names the first send)."""
    sent_ms = str(message.sent_timestamp_ms)
    return f"{message.message_id} {sent_ms} {_signature(key, message.message_id, sent_ms)}"


def with_origin(message: ReceivedMessage, key: MaskingKey) -> ReceivedMessage:
    """The message with the id and timestamp of its first send if it carries a valid origin; else as is."""
    parts = (message.origin or "").split(" ")
    if len(parts) != 3:
        return message
    message_id, sent_ms, signature = parts
    if not sent_ms.isdigit() or not hmac.compare_digest(signature, _signature(key, message_id, sent_ms)):
        return message
    return dataclasses.replace(message, message_id=message_id, sent_timestamp_ms=int(sent_ms))
