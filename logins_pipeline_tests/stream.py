"""A steady stream of logins into a queue, as apps publish them: `rate` messages a second, sent in
batches of 10 by a few threads, each on its own schedule, for a fixed time. Used by the stream benchmark
(benchmarks/stream_bench.py) and the batching-window test."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from logins_pipeline.resources.sqs import SQS_BATCH, SQSResource


class SteadyStream:
    """Sends `bodies` (at most all of them) at `rate` messages a second from `senders` threads, from `start()`
    until `seconds` have passed, the bodies run out, or `stop()`. A sender that falls behind its schedule
    (the server is slower than the rate) sends what is due at once: `behind` says by how much it was late."""

    def __init__(self, sqs: SQSResource, bodies: list[str], rate: float, seconds: float, senders: int = 1):
        self.sqs, self.rate, self.seconds, self.senders = sqs, rate, seconds, senders
        due = min(len(bodies), int(rate * seconds))
        self._shares = [bodies[i:due:senders] for i in range(senders)]
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(senders, thread_name_prefix="stream-sender")
        self._sending: list = []
        self.sent = 0
        self.failed = 0
        self.behind = 0.0  # the most seconds a sender was behind its schedule
        self.started = self.ended = 0.0  # time.time()
        self._lock = threading.Lock()

    def start(self) -> "SteadyStream":
        self.started = time.time()
        self._sending = [self._pool.submit(self._send, share) for share in self._shares]
        return self

    def wait(self) -> "SteadyStream":
        for sending in self._sending:
            sending.result()
        self._pool.shutdown()
        self.ended = time.time()
        return self

    def stop(self) -> "SteadyStream":
        self._stop.set()
        return self.wait()

    def __enter__(self) -> "SteadyStream":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _send(self, share: list[str]) -> None:
        client, share_rate = self.sqs.client(), self.rate / self.senders
        for first in range(0, len(share), SQS_BATCH):
            due_at = self.started + (first + SQS_BATCH) / share_rate  # when this batch's last message is due
            if self._stop.wait(max(0.0, due_at - time.time())):
                return
            failed = self.sqs.send_bodies(share[first : first + SQS_BATCH], client)
            with self._lock:
                self.sent += min(SQS_BATCH, len(share) - first) - failed
                self.failed += failed
                self.behind = max(self.behind, time.time() - due_at)
