"""One bounded drain of the queue, in chunks: receive -> build batch -> COMMIT -> delete, repeated.

A chunk's messages are deleted from SQS only after the transaction that stored them has committed, so a
crash at any point loses nothing (the messages come back after the visibility timeout) and duplicates
nothing (the second write of a message id is a no-op). A crash costs only the work on the chunks in hand:
the one being committed, those being built (one, or one per build worker: pipeline.py) and the one being
received. While a chunk is in hand its messages stay invisible (visibility.py), and a message whose
processing keeps failing is isolated from its chunk (isolation.py) and left for the dead-letter queue.
"""

import functools
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.origin import with_origin
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import sent_at
from logins_pipeline.drain.failpoints import failpoint
from logins_pipeline.drain.isolation import Stored, SystemicFailure
from logins_pipeline.drain.pipeline import BUILD_PROCESSES, MIN_MESSAGES_FOR_A_WORKER, start_build_server, store_chunks
from logins_pipeline.drain.visibility import VisibilityHeartbeat
from logins_pipeline.drain.watchdog import Watchdog
from logins_pipeline.resources.erased_users import message_user_hash, suppressed_hashes
from logins_pipeline.resources.postgres import PostgresResource, abort, apply_migrations, write_refusal
from logins_pipeline.resources.sqs import MAX_MESSAGE_BYTES, SQS_BATCH, ReceivedChunk, SQSResource

POLL_SECONDS = 0.25  # how often the drain looks for a built chunk to commit while a receive is filling
# A run with 4 build workers holds 7 chunks: 7 of 15,000 stay under the ~120,000 messages a standard queue
# lets be in flight (AWS refuses receives past it with OverLimit).
MAX_CHUNK_SIZE = 15_000
MIB = 1024 * 1024
# Bodies a run holds at once, by default: in a 4 GiB task, besides the run (~0.4 GiB) and 4 build workers
# (~0.3 GiB each) that hold a parsed copy of the chunk they build (about 3x its bodies).
MAX_MIB_IN_HAND = 512
# The longest one wait of a run (a Postgres transaction, a build, SQS answering a receive) may last: a hang, far
# past a slow step (a 10,000-message COMMIT or build takes seconds here), and past one receive call's own
# bound (5 attempts of at most 16 s, with backoff). The run then fails, its messages back in the queue.
STALL_SECONDS = 120
# After SIGTERM (or a cancel) the drain returns within this, and a `logins-pipeline run` or a Dagster run process
# exits within 20 s (Dagster records the interrupt in a few seconds more): ECS sends SIGKILL 30 s after SIGTERM.
SHUTDOWN_SECONDS = 15


@dataclass(frozen=True)
class DrainLimits:
    max_messages: int = 100_000
    chunk_size: int = 10_000
    receivers: int = 4
    visibility_timeout: int | None = None  # seconds; default: the SQS resource's
    build_processes: int = BUILD_PROCESSES  # worker processes building batches; 0 builds them in the run's own
    batching_window: float | None = 5.0  # seconds a chunk's first message waits for more (None: no window)
    idle_seconds: float = 0.0  # receive on this long after the last message when the queue runs dry (0: end)
    max_seconds: float = 900.0  # no new chunk is received after this long
    max_bytes_in_hand: int = MAX_MIB_IN_HAND * MIB  # of message bodies, received and not yet deleted
    stall_timeout: float = STALL_SECONDS
    shutdown_timeout: float = SHUTDOWN_SECONDS
    # LOGINS_RETENTION_DAYS: a login sent before the first day kept is quarantined as `expired`; None: none expire
    retention_days: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be 1 to {MAX_CHUNK_SIZE:,}, not {self.chunk_size:,}")
        least = self.chunks_in_hand * SQS_BATCH * MAX_MESSAGE_BYTES
        if self.max_bytes_in_hand < least:
            raise ValueError(
                f"max_bytes_in_hand must be at least {least // MIB} MiB with {self.build_processes} build "
                f"processes ({self.chunks_in_hand} chunks in hand, each with room for one receive of the "
                f"largest bodies), not {self.max_bytes_in_hand / MIB:g} MiB"
            )

    @property
    def chunks_in_hand(self) -> int:
        """The most chunks a run holds: one receiving, one building per worker, one storing, one deleting."""
        return self.build_processes + 3

    @property
    def chunk_bytes(self) -> int:
        """The most bytes of bodies one chunk may hold: a chunk closes early when the next receive could
        pass it."""
        return self.max_bytes_in_hand // self.chunks_in_hand


@dataclass
class DrainSummary:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    suppressed: int = 0  # of erased users (erasure.py): deleted unread, never stored
    failed: int = 0  # failed alone (not a validation failure): left in the queue for the dead-letter queue
    delete_failures: int = 0
    stale: int = 0  # committed but not deleted: their receipt handles went stale while in hand (visibility.py)
    chunks: int = 0
    seconds: float = 0.0
    oldest_sent_at: datetime | None = None
    reasons: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    delays: array = field(default_factory=lambda: array("f"))  # SentTimestamp -> COMMIT, seconds, per message

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    def delay_percentiles(self) -> dict[str, float]:
        """Send->commit delay in seconds: {"p50", "p95", "max"}; empty if nothing was committed."""
        if not self.delays:
            return {}
        p50, p95, most = np.percentile(np.frombuffer(self.delays, dtype=np.float32), [50, 95, 100])
        return {"p50": float(p50), "p95": float(p95), "max": float(most)}


def _record(
    summary: DrainSummary,
    messages: list[ReceivedMessage],
    stored: Stored,
    committed_at: float,
    stale: list[ReceivedMessage],
) -> None:
    """Add a stored chunk to the summary; `committed_at` is the time.time() just after its COMMIT, `stale` its
    messages whose receipt handles went stale (not deleted: visibility.py)."""
    summary.chunks += 1
    summary.stale += len(stale)
    summary.delays.extend(committed_at - m.sent_timestamp_ms / 1000 for m in stored.committed)
    summary.received += len(messages)
    summary.inserted += stored.inserted
    summary.duplicates += stored.duplicates
    summary.quarantined += stored.quarantined
    summary.failed += len(stored.failed)
    summary.reasons.update(stored.reasons)
    summary.errors.update(stored.errors)
    oldest = min(sent_at(m) for m in messages)
    summary.oldest_sent_at = min(filter(None, (summary.oldest_sent_at, oldest)))


class ServiceFailed(Exception):
    """Postgres or SQS failed in the middle of a drain; says what became of the messages in hand."""


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _delete(
    sqs: SQSResource,
    heartbeat: VisibilityHeartbeat,
    watchdog: Watchdog,
    messages: list[ReceivedMessage],
    threads: int,
) -> int:
    """Delete committed messages, until the deadline of a stop; how many were not deleted (they come back
    after the visibility timeout and are skipped as duplicates)."""

    def deleted(n: int, group: list[ReceivedMessage]) -> None:
        heartbeat.release(group)  # no renewal for what is gone (or failed to go: skipped when it comes back)
        if n == 0:
            failpoint("mid_delete")

    try:
        return sqs.delete_all(messages, threads, after_group=deleted, go_on=lambda: watchdog.left() > 0)
    finally:
        heartbeat.release(messages)


def _prepare(conn: psycopg.Connection, keys: PiiKeys) -> None:
    """Migrations, then a check that the database takes writes, before anything is received."""
    apply_migrations(conn)
    if refusal := write_refusal(conn, keys.vault is not None):
        raise SystemicFailure(f"Postgres refuses the writes: {refusal}. Nothing was received")


def _builds_in_workers(sqs: SQSResource, limits: DrainLimits) -> bool:
    """Whether the run is about to build a chunk in a worker process: it may, and a backlog waits that fills one."""
    least = MIN_MESSAGES_FOR_A_WORKER
    if not limits.build_processes or min(limits.chunk_size, limits.max_messages) < least:
        return False
    return sqs.queue_depth().visible >= least


def drain(
    sqs: SQSResource,
    postgres: PostgresResource,
    keys: PiiKeys,
    limits: DrainLimits = DrainLimits(),
    progress: Callable[[DrainSummary], None] = lambda summary: None,
    stop: threading.Event | None = None,
) -> DrainSummary:
    """Drain up to limits.max_messages, for up to limits.max_seconds, until the queue has been dry for
    limits.idle_seconds (0: as soon as it is dry), or until `stop` is set (then the chunk being committed is
    finished and deleted, and every other message the run holds goes back to the queue at once, all within
    limits.shutdown_timeout). A chunk closes when it is full, when the queue is dry, or when its batching
    window has passed while the run keeps up with the queue (SQSResource.receive_chunk). The stages overlap:
    while chunk N is committed, the next chunks are being built (pipeline.py) and received, and chunk N-1
    deleted; a chunk is deleted only after its COMMIT. A wait longer than limits.stall_timeout fails the run
    with Stalled (watchdog.py)."""
    try:
        return _drain(sqs, postgres, keys, limits, progress, stop or threading.Event())
    except psycopg.OperationalError as error:
        raise ServiceFailed(
            f"Postgres failed: {_first_line(error)}. Nothing uncommitted was deleted: those "
            "messages stay in the queue for the next run."
        ) from error
    except (BotoCoreError, ClientError) as error:
        raise ServiceFailed(
            f"SQS failed: {_first_line(error)}. Committed chunks are stored; a message not yet "
            "deleted comes back and is skipped as a duplicate."
        ) from error


class _Receiving:
    """The chunks a run receives, as store_chunks takes them: each a list of messages, or None for "no new
    chunk yet" while a receive is filling. One chunk is received ahead at most, so memory stays bounded."""

    def __init__(
        self,
        sqs: SQSResource,
        keys: PiiKeys,
        limits: DrainLimits,
        timeout: int,
        heartbeat: VisibilityHeartbeat,
        watchdog: Watchdog,
        pool: ThreadPoolExecutor,
    ):
        self.sqs, self.keys, self.limits, self.timeout = sqs, keys, limits, timeout
        self.heartbeat, self.watchdog, self.pool, self.stop = heartbeat, watchdog, pool, watchdog.stop
        self.started = self.last_message = time.monotonic()  # the last chunk with messages came in
        self.received = 0  # messages received so far: what counts against limits.max_messages
        # the hashes of erased users, read again for each chunk: an erasure during a long run counts from the
        # next chunk received (set once the schema is migrated)
        self.suppression: Callable[[], frozenset[str]] = frozenset
        self.suppressed = 0

    def _receive_next(self) -> Future[ReceivedChunk] | None:
        wanted = min(self.limits.chunk_size, self.limits.max_messages - self.received)
        if wanted <= 0 or self.stop.is_set() or time.monotonic() - self.started >= self.limits.max_seconds:
            return None
        return self.pool.submit(
            self.sqs.receive_chunk,
            wanted,
            self.limits.receivers,
            self.timeout,
            self.heartbeat.hold,
            self.stop,
            window=self.limits.batching_window,
            max_bytes=self.limits.chunk_bytes,
        )

    def _idle(self) -> bool:
        """The queue has had nothing for the run for limits.idle_seconds: it ends."""
        return time.monotonic() - self.last_message >= self.limits.idle_seconds

    def __iter__(self) -> Iterator[list[ReceivedMessage] | None]:
        receiving = self._receive_next()
        while receiving is not None:
            if not wait([receiving], timeout=POLL_SECONDS).done:
                if self.stop.is_set():
                    return
                if (waited := time.monotonic() - self.heartbeat.last_progress) > self.watchdog.left():
                    raise self.watchdog.stalled("SQS (a receive)", waited)
                yield None  # no new chunk yet: store_chunks commits what is built meanwhile
                continue
            chunk = receiving.result()
            if self.stop.is_set():
                return
            if chunk.messages:
                self.last_message = time.monotonic()
                failpoint("after_receive")
                self.received += len(chunk.messages)
            # prefetch: at most one chunk ahead, so memory stays bounded; none once the queue is dry and idle
            receiving = None if (chunk.dry or not chunk.messages) and self._idle() else self._receive_next()
            if kept := self._unsuppressed(chunk.messages):
                yield [with_origin(m, self.keys.masking) for m in kept]

    def _unsuppressed(self, messages: list[ReceivedMessage]) -> list[ReceivedMessage]:
        """The messages not of an erased user; those are deleted at once, unread (none looked at while no
        user is erased)."""
        users = self.suppression() if messages else frozenset()
        if not users:
            return messages
        keep: list[ReceivedMessage] = []
        gone: list[ReceivedMessage] = []
        for m in messages:
            (gone if message_user_hash(m.body, self.keys.masking) in users else keep).append(m)
        if gone:
            self.sqs.delete(gone)  # one that fails comes back, and is deleted again
            self.heartbeat.release(gone)
            self.suppressed += len(gone)
        return keep


def _suppression(conn: psycopg.Connection, keys: PiiKeys, watchdog: Watchdog) -> frozenset[str]:
    """The suppression list, read between two chunks' transactions (the connection is idle then: the chunks
    are received between them), bounded like any wait of the run."""
    with watchdog.waiting("Postgres", lambda: abort(conn)):
        return suppressed_hashes(conn, keys.masking)


def _drain(
    sqs: SQSResource,
    postgres: PostgresResource,
    keys: PiiKeys,
    limits: DrainLimits,
    progress: Callable[[DrainSummary], None],
    stop: threading.Event,
) -> DrainSummary:
    started = time.monotonic()
    summary = DrainSummary()
    timeout = limits.visibility_timeout or sqs.visibility_timeout

    with (
        postgres.connect() as conn,
        VisibilityHeartbeat(sqs, timeout, limits.stall_timeout) as heartbeat,  # left last: deletes finish first
        Watchdog(limits.stall_timeout, limits.shutdown_timeout, stop) as watchdog,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        try:
            with watchdog.waiting("Postgres", lambda: abort(conn)):
                _prepare(conn, keys)
            if _builds_in_workers(sqs, limits):
                start_build_server()
            deleting, in_deletion = None, set()
            # closed on the way out, error or not: its build workers stop then, not when it is collected
            receiving = _Receiving(sqs, keys, limits, timeout, heartbeat, watchdog, pool)
            receiving.suppression = functools.partial(_suppression, conn, keys, watchdog)
            chunks = store_chunks(conn, iter(receiving), keys, limits.build_processes, watchdog, limits.retention_days)
            with closing(chunks) as stored_chunks:
                for messages, stored in stored_chunks:  # COMMIT happens here ...
                    committed_at = time.time()
                    failpoint("after_commit")
                    heartbeat.release(stored.failed)
                    if deleting is not None:
                        summary.delete_failures += deleting.result()
                    fresh, stale = heartbeat.split_stale(stored.committed)
                    # ... and only then delete
                    deleting = pool.submit(_delete, sqs, heartbeat, watchdog, fresh, limits.receivers)
                    in_deletion = {m.receipt_handle for m in fresh}
                    _record(summary, messages, stored, committed_at, stale)
                    summary.suppressed = receiving.suppressed
                    summary.seconds = time.monotonic() - started
                    progress(summary)
            if stop.is_set():  # what was received or built but not stored goes back now, beside the last deletes
                abandoned = [m for m in heartbeat.held() if m.receipt_handle not in in_deletion]
                heartbeat.give_back(abandoned, go_on=lambda: watchdog.left() > 0)
            if deleting is not None:
                summary.delete_failures += deleting.result()
            summary.suppressed = receiving.suppressed
        finally:
            stop.set()  # a receive still filling a chunk stops; what it holds goes back to the queue
    summary.seconds = time.monotonic() - started
    return summary


def drain_until_interrupted(
    sqs: SQSResource,
    postgres: PostgresResource,
    keys: PiiKeys,
    limits: DrainLimits = DrainLimits(),
    progress: Callable[[DrainSummary], None] = lambda summary: None,
) -> DrainSummary:
    """`drain` in a worker thread, so that an interrupt of this thread never lands inside a transaction:
    Dagster raises DagsterExecutionInterruptedError in the step's thread when the run is cancelled or gets
    SIGTERM (Ctrl-C raises KeyboardInterrupt). The drain is told to stop receiving, finishes the chunk it is
    committing (COMMIT, then delete), returns everything else it holds to the queue, and then the
    interrupt goes on: within limits.shutdown_timeout (the drain's watchdog bounds every wait after a stop;
    this wait is only a backstop)."""
    stop = threading.Event()
    runner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drain")
    future = runner.submit(drain, sqs, postgres, keys, limits, progress, stop)
    runner.shutdown(wait=False)
    try:
        return future.result()
    except BaseException:
        stop.set()
        wait([future], timeout=limits.shutdown_timeout)
        raise
