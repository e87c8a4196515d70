"""A message as received from SQS. The body holds plaintext PII: it never goes into a repr."""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str = field(repr=False)
    sent_timestamp_ms: int
    receive_count: int
    body: str = field(repr=False)
    origin: str | None = field(default=None, repr=False)  # the LoginsOrigin attribute of a redriven message
