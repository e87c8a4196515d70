"""Keep the messages a run holds invisible for as long as it holds them.

SQS hides a received message only for the visibility timeout; a chunk that takes longer than that (a slow
COMMIT, a lock wait, a long delete) would become visible again, and another run would take the same
messages. While the context is open, a thread looks at the held messages every TICKS_PER_TIMEOUT-th of the
timeout and renews those with less than half of it left (ChangeMessageVisibilityBatch).

Renewing only what is close to expiry keeps the heartbeat's cost near zero while chunks pass through in
well under half the timeout (the usual case), and its renewals run on RENEW_THREADS threads: a run can hold
(build workers + 2) chunks, and one more while it is deleted: 70,000 messages with 4 build workers, 7,000
calls to renew them all. At 50 ms a call that is 350 s on one thread, but 22 s on sixteen, inside the 60 s
left of a 120 s timeout.

`release` stops renewing: after the delete, or for a message left to fail until SQS dead-letters it.
`give_back` returns messages to the queue at once (visibility 0), and leaving the context gives back the
messages still held (received, not committed: a run that stops or fails), instead of after the timeout.

Per entry: a renewal SQS fails on its side (InternalError) is tried again, in the call (sqs.py) and at the
next beat, while the message is still hidden; one it refuses as the caller's fault (the handle is no longer
valid), or one that lapsed before it could be renewed, is stale: another run may hold the message now. It
is dropped from the holdings and never deleted (`split_stale`); the run counts it, and the message comes
back to be stored as a duplicate and deleted by its new holder.

Progress, not presence: the heartbeat renews only while the run makes progress (a receive answered, a
chunk built, stored or deleted) within `stall_seconds`. A run stuck in a wait that nothing else bounds
stops renewing, so its messages come back within one visibility timeout rather than SQS's 12-hour cap.
"""

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.resources.sqs import SQSResource, chunks

RENEW_THREADS = 16
TICKS_PER_TIMEOUT = 10


class VisibilityHeartbeat:
    def __init__(self, sqs: SQSResource, timeout: int, stall_seconds: float = math.inf):
        self.sqs = sqs
        self.timeout = timeout
        self.stall_seconds = stall_seconds
        self.last_progress = time.monotonic()
        self._held: dict[str, tuple[ReceivedMessage, float]] = {}  # by receipt handle: (message, hidden until)
        self._stale: set[str] = set()  # receipt handles SQS refused, or that lapsed: never deleted
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="visibility-heartbeat", daemon=True)
        self._clients = threading.local()
        self._renewers = ThreadPoolExecutor(RENEW_THREADS, thread_name_prefix="visibility-renew")

    def hold(self, messages: list[ReceivedMessage], since: float | None = None) -> list[ReceivedMessage]:
        """Keep `messages` hidden; they were received with the timeout at `since` (time.monotonic(); now if
        not given)."""
        self.progress()
        hidden_until = (time.monotonic() if since is None else since) + self.timeout
        with self._lock:
            self._held.update((m.receipt_handle, (m, hidden_until)) for m in messages)
        return messages

    def release(self, messages: list[ReceivedMessage]) -> None:
        self.progress()
        with self._lock:
            for message in messages:
                self._held.pop(message.receipt_handle, None)

    def give_back(self, messages: list[ReceivedMessage], go_on: Callable[[], bool] = lambda: True) -> None:
        """Make `messages` visible again at once, and stop holding them; only while `go_on()` (a run that must
        stop by a deadline lets the rest lapse after their visibility timeout)."""
        self.release(messages)
        self._change(messages, 0, go_on)

    def progress(self) -> None:
        self.last_progress = time.monotonic()

    def held(self) -> list[ReceivedMessage]:
        with self._lock:
            return [message for message, _ in self._held.values()]

    def __enter__(self) -> "VisibilityHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join()
        self.give_back(self.held())
        self._renewers.shutdown()

    def _beat(self) -> None:
        while not self._stopped.wait(self.timeout / TICKS_PER_TIMEOUT):
            started = time.monotonic()
            if started - self.last_progress > self.stall_seconds:
                continue  # no progress: let the messages lapse (the drain's watchdog fails the run)
            with self._lock:
                lapsed = [m for m, hidden_until in self._held.values() if hidden_until <= started]
                due = [m for m, until in self._held.values() if started < until and until - started < self.timeout / 2]
            self._drop_stale(lapsed)  # visible for a while: another run may have received it since
            failed = self._change(due, self.timeout)
            if failed is None:
                continue  # SQS unreachable: the next beat tries again
            self._drop_stale([message for message, sender_fault in failed if sender_fault])
            not_renewed = {message.receipt_handle for message, _ in failed}  # the rest: tried again next beat
            with self._lock:
                for message in due:
                    if message.receipt_handle in self._held and message.receipt_handle not in not_renewed:
                        self._held[message.receipt_handle] = (message, started + self.timeout)

    def _drop_stale(self, messages: list[ReceivedMessage]) -> None:
        """Stop holding messages whose receipt handle is no longer valid, and remember them as stale."""
        with self._lock:
            for message in messages:
                self._held.pop(message.receipt_handle, None)
                self._stale.add(message.receipt_handle)

    def split_stale(self, messages: list[ReceivedMessage]) -> tuple[list[ReceivedMessage], list[ReceivedMessage]]:
        """(those whose handle is still good, those known to be stale): a stale handle is not deleted."""
        with self._lock:
            stale = [message for message in messages if message.receipt_handle in self._stale]
        return [message for message in messages if message.receipt_handle not in self._stale], stale

    def _change(
        self, messages: list[ReceivedMessage], seconds: int, go_on: Callable[[], bool] = lambda: True
    ) -> list[tuple[ReceivedMessage, bool]] | None:
        """Set the visibility of `messages` to `seconds` from now, 10 to a call on RENEW_THREADS threads, while
        `go_on()`; the entries that failed (with their SenderFault), or None if the server could not be
        reached (the next beat tries again; the timeout covers the rest)."""

        def change(group: list[ReceivedMessage]) -> list[tuple[ReceivedMessage, bool]]:
            return self.sqs.change_visibility(group, seconds, self._client()) if go_on() else []

        try:
            return [entry for failed in self._renewers.map(change, chunks(messages)) for entry in failed]
        except (BotoCoreError, ClientError):
            return None

    def _client(self):
        if not hasattr(self._clients, "client"):
            self._clients.client = self.sqs.client()
        return self._clients.client
