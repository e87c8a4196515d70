"""One bounded drain of the queue, in chunks: receive -> build batch -> COMMIT -> delete, repeated.

A chunk's messages are deleted from SQS only after the transaction that stored them has committed, so a
crash at any point loses nothing (the messages come back after the visibility timeout) and duplicates
nothing (the second write of a message id is a no-op). A crash costs at most one chunk's work.
"""

import time
from concurrent.futures import ThreadPoolExecutor
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.transform import Batch, build_batch, sent_at
from logins_pipeline.core.vault import VaultKey
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations, write_batch
from logins_pipeline.resources.sqs import SQSResource


@dataclass(frozen=True)
class DrainLimits:
    max_messages: int = 100_000
    chunk_size: int = 5_000
    receivers: int = 4


@dataclass
class DrainSummary:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    delete_failures: int = 0
    chunks: int = 0
    seconds: float = 0.0
    oldest_sent_at: datetime | None = None
    reasons: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0


def _record(summary: DrainSummary, messages: list[ReceivedMessage], batch: Batch, result) -> None:
    summary.chunks += 1
    summary.received += len(messages)
    summary.inserted += result.inserted
    summary.duplicates += result.duplicates + batch.repeats
    summary.quarantined += result.quarantined
    summary.reasons.update(batch.reasons())
    oldest = min(sent_at(m) for m in messages)
    summary.oldest_sent_at = min(filter(None, (summary.oldest_sent_at, oldest)))


def drain(
    sqs: SQSResource,
    postgres: PostgresResource,
    key: MaskingKey,
    limits: DrainLimits = DrainLimits(),
    progress: Callable[[DrainSummary], None] = lambda summary: None,
    vault_key: VaultKey | None = None,
) -> DrainSummary:
    """Drain up to limits.max_messages. Three stages overlap: while chunk N is validated and committed,
    chunk N+1 is being received and chunk N-1 deleted; a chunk is deleted only after its COMMIT."""
    started = time.monotonic()
    summary = DrainSummary()
    requested = 0

    def receive_next():
        nonlocal requested
        wanted = min(limits.chunk_size, limits.max_messages - requested)
        requested += wanted
        return pool.submit(sqs.receive_chunk, wanted, limits.receivers) if wanted > 0 else None

    with postgres.connect() as conn, ThreadPoolExecutor(max_workers=2) as pool:
        apply_migrations(conn)
        deleting = None
        receiving = receive_next()
        while receiving is not None and (messages := receiving.result()):
            receiving = receive_next()  # prefetch: at most one chunk ahead, so memory stays bounded
            batch = build_batch(messages, key, vault_key)
            result = write_batch(conn, batch)  # COMMIT happens here ...
            if deleting is not None:
                summary.delete_failures += deleting.result()
            deleting = pool.submit(sqs.delete_all, messages, limits.receivers)  # ... and only then delete
            _record(summary, messages, batch, result)
            summary.seconds = time.monotonic() - started
            progress(summary)
        if deleting is not None:
            summary.delete_failures += deleting.result()
    summary.seconds = time.monotonic() - started
    return summary
