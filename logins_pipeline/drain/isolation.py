"""Store a chunk in one transaction; if it fails because of what is in it, find the message that fails.

A message that cannot be validated is quarantined, but a message whose processing raises (a trigger that
rejects it, a bug in the transform) would fail its whole chunk again on every delivery. So a chunk whose
transaction fails for any reason but the connection is split in halves and each half retried: the good
messages commit, and a message that fails alone is left in the queue, not deleted, until SQS's redrive
policy moves it to the dead-letter queue after maxReceiveCount receives. When more than MAX_FAILED_ALONE
messages of one chunk fail alone, the fault is not in single messages (a broken table, a full disk): the
error is raised and the run fails, rather than sending the whole queue to the dead-letter queue.

Some errors are never about the messages, and are not bisected: a database that refuses every write (a
revoked grant, a read-only server after a failover, a full disk; SYSTEMIC_CLASSES) fails the run at once
with SystemicFailure, before any message is charged a failure of its own. A deadlock, a serialization failure
or a lock wait cut short (TRANSIENT) is the moment's: the transaction is tried again.
"""

import time
import traceback
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date

import psycopg

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import Batch, build_batch
from logins_pipeline.drain.watchdog import Stalled, Watchdog
from logins_pipeline.resources.postgres import WriteResult, abort, write_batch

MAX_FAILED_ALONE = 10
# SQLSTATE classes no message can cause: connection (08), transaction state (25: read-only), authorization (28),
# access and schema (42: a revoked grant, a missing table), resources (53: disk full), limits (54), operator
# intervention (57: shutdown, statement timeout), system (58), configuration (F0), internal (XX).
SYSTEMIC_CLASSES = ("08", "25", "28", "42", "53", "54", "57", "58", "F0", "XX")
TRANSIENT = ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available: tried again
TRANSIENT_ATTEMPTS = 3  # transactions in all; then the error counts as systemic
# connection lost, server down, no answer in time
NOT_ABOUT_THE_MESSAGES = (psycopg.OperationalError, psycopg.InterfaceError, Stalled)


class SystemicFailure(Exception):
    """Postgres refuses the writes for a reason no message causes: the run fails without bisecting its chunk,
    so that no message is left to fail alone towards the dead-letter queue."""


def _sqlstate(error: BaseException) -> str:
    return getattr(error, "sqlstate", None) or ""


def systemic(error: BaseException) -> SystemicFailure | None:
    """The SystemicFailure that `error` is, if it is one. Names the error class, its SQLSTATE and the first
    line of the server's message, which for these classes names objects, never values."""
    sqlstate = _sqlstate(error)
    if sqlstate[:2] not in SYSTEMIC_CLASSES and sqlstate not in TRANSIENT:
        return None
    lines = str(error).strip().splitlines()
    return SystemicFailure(
        f"Postgres refuses the writes: {type(error).__name__} (SQLSTATE {sqlstate}): {lines[0] if lines else ''}. "
        "Not a message's fault: nothing was bisected, and the messages in hand are back in the queue"
    )


def _write(conn: psycopg.Connection, batch: Batch, watchdog: Watchdog | None) -> WriteResult:
    """write_batch, tried again after a transient error (TRANSIENT_ATTEMPTS transactions in all)."""
    for attempt in range(TRANSIENT_ATTEMPTS):
        try:
            with watchdog.waiting("Postgres", lambda: abort(conn)) if watchdog else nullcontext():
                return write_batch(conn, batch)  # one transaction: COMMIT, or nothing
        except psycopg.Error as error:
            if _sqlstate(error) not in TRANSIENT or attempt == TRANSIENT_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")


class ChunkFailed(Exception):
    """Too many messages of a chunk failed alone. Names the error class and where it was raised, not its
    message: an error from the transform may quote a plaintext value."""


@dataclass
class Stored:
    committed: list[ReceivedMessage] = field(default_factory=list)  # in a committed transaction: delete them
    failed: list[ReceivedMessage] = field(default_factory=list)  # failed alone: left in the queue
    inserted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)  # quarantine reason codes
    errors: Counter = field(default_factory=Counter)  # error class names of the messages that failed alone


def store(
    conn: psycopg.Connection,
    messages: list[ReceivedMessage],
    keys: PiiKeys,
    prebuilt: Batch | None = None,
    watchdog: Watchdog | None = None,
    first_kept: date | None = None,
) -> Stored:
    """`prebuilt`, if given, is build_batch(messages, keys, first_kept) made beforehand (see pipeline.py); the
    halves of a failing chunk are built here, with the same `first_kept` (messages sent before it are
    quarantined as expired). Each transaction is bounded by `watchdog`, if given."""
    stored = Stored()
    parts = [messages]
    while parts:
        part = parts.pop()
        try:
            batch = prebuilt if part is messages and prebuilt is not None else build_batch(part, keys, first_kept)
            result = _write(conn, batch, watchdog)
        except NOT_ABOUT_THE_MESSAGES:
            raise
        except Exception as error:
            if failure := systemic(error):
                raise failure from None
            if len(part) > 1:
                half = len(part) // 2
                parts += [part[half:], part[:half]]  # the first half is tried first
                continue
            stored.failed += part
            stored.errors[type(error).__name__] += 1
            if len(stored.failed) > MAX_FAILED_ALONE:
                if isinstance(error, psycopg.Error):  # from the database, which never sees plaintext PII
                    raise
                where = traceback.extract_tb(error.__traceback__)[-1]
                raise ChunkFailed(
                    f"{type(error).__name__} for each of {len(stored.failed)} messages, at "
                    f"{where.filename}:{where.lineno} in {where.name}"
                ) from None
            continue
        stored.committed += part
        stored.inserted += result.inserted
        stored.duplicates += result.duplicates + batch.repeats
        stored.quarantined += result.quarantined
        stored.reasons.update(batch.reasons())
    return stored
