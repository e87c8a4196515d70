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
Leaving the context returns the messages still held (received, not committed: a run that stops or fails) to
the queue at once, instead of after the timeout.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.resources.sqs import SQSResource, chunks

RENEW_THREADS = 16
TICKS_PER_TIMEOUT = 10


class VisibilityHeartbeat:
    def __init__(self, sqs: SQSResource, timeout: int):
        self.sqs = sqs
        self.timeout = timeout
        self._held: dict[str, tuple[ReceivedMessage, float]] = {}  # by receipt handle: (message, hidden until)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="visibility-heartbeat", daemon=True)
        self._clients = threading.local()
        self._renewers = ThreadPoolExecutor(RENEW_THREADS, thread_name_prefix="visibility-renew")

    def hold(self, messages: list[ReceivedMessage], since: float | None = None) -> list[ReceivedMessage]:
        """Keep `messages` hidden; they were received with the timeout at `since` (time.monotonic(); now if
        not given)."""
        hidden_until = (time.monotonic() if since is None else since) + self.timeout
        with self._lock:
            self._held.update((m.receipt_handle, (m, hidden_until)) for m in messages)
        return messages

    def release(self, messages: list[ReceivedMessage]) -> None:
        with self._lock:
            for message in messages:
                self._held.pop(message.receipt_handle, None)

    def held(self) -> list[ReceivedMessage]:
        with self._lock:
            return [message for message, _ in self._held.values()]

    def __enter__(self) -> "VisibilityHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join()
        self._change(self.held(), 0)
        self._renewers.shutdown()

    def _beat(self) -> None:
        while not self._stopped.wait(self.timeout / TICKS_PER_TIMEOUT):
            started = time.monotonic()
            with self._lock:
                due = [m for m, hidden_until in self._held.values() if hidden_until - started < self.timeout / 2]
            if due and self._change(due, self.timeout):
                with self._lock:
                    for message in due:
                        if message.receipt_handle in self._held:
                            self._held[message.receipt_handle] = (message, started + self.timeout)

    def _change(self, messages: list[ReceivedMessage], seconds: int) -> bool:
        """Set the visibility of `messages` to `seconds` from now, 10 to a call on RENEW_THREADS threads;
        False if the server could not be reached (the next beat tries again; the timeout covers the rest)."""
        try:
            list(
                self._renewers.map(
                    lambda group: self.sqs.change_visibility(group, seconds, self._client()), chunks(messages)
                )
            )
            return True
        except (BotoCoreError, ClientError):
            return False

    def _client(self):
        if not hasattr(self._clients, "client"):
            self._clients.client = self.sqs.client()
        return self._clients.client
