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

    @property
    def body_bytes(self) -> int:
        """The body's size as SQS counts it: bytes of UTF-8 (a lone surrogate as the 3 it was sent as)."""
        return len(self.body) if self.body.isascii() else len(self.body.encode("utf-8", "surrogatepass"))

    def __reduce__(self) -> tuple[type["ReceivedMessage"], tuple[str, str, int, int, str, str | None]]:
        # Chunks go to batch-building processes (drain/pipeline.py): pickled as plain arguments, a message costs a
        # tenth of what a frozen dataclass's default pickling does.
        return ReceivedMessage, (
            self.message_id,
            self.receipt_handle,
            self.sent_timestamp_ms,
            self.receive_count,
            self.body,
            self.origin,
        )
