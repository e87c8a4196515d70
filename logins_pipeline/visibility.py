"""Keep the messages a run holds invisible for as long as it holds them.

SQS hides a received message only for the visibility timeout; a chunk that takes longer than that (a slow
COMMIT, a lock wait, a long delete) would become visible again, and another run would take the same
messages. While the context is open, a thread renews the timeout of every held message every third of it
(ChangeMessageVisibilityBatch). `release` stops renewing: after the delete, or for a message left to fail
until SQS dead-letters it. Leaving the context returns the messages still held (received, not committed:
a run that stops or fails) to the queue at once, instead of after the timeout.
"""

import threading

from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.resources.sqs import SQSResource


class VisibilityHeartbeat:
    def __init__(self, sqs: SQSResource, timeout: int):
        self.sqs = sqs
        self.timeout = timeout
        self._held: dict[str, ReceivedMessage] = {}  # by receipt handle
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="visibility-heartbeat", daemon=True)

    def hold(self, messages: list[ReceivedMessage]) -> list[ReceivedMessage]:
        with self._lock:
            self._held.update((m.receipt_handle, m) for m in messages)
        return messages

    def release(self, messages: list[ReceivedMessage]) -> None:
        with self._lock:
            for message in messages:
                self._held.pop(message.receipt_handle, None)

    def held(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._held.values())

    def __enter__(self) -> "VisibilityHeartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join()
        self._change(self.held(), 0)

    def _beat(self) -> None:
        client = self.sqs.client()
        while not self._stopped.wait(self.timeout / 3):
            self._change(self.held(), self.timeout, client)

    def _change(self, messages: list[ReceivedMessage], seconds: int, client=None) -> None:
        if not messages:
            return
        try:
            self.sqs.change_visibility(messages, seconds, client)
        except (BotoCoreError, ClientError):
            pass  # the server is unreachable: the next beat tries again; the timeout covers the rest
