"""Bounds on the drain thread's waits: a hang fails the run, it does not hold the run's messages hidden.

The drain thread waits on Postgres (a transaction), on a build worker (a batch) and on SQS (a receive). No
wait may last longer than `stall_seconds`: far longer than a slow step (a 10,000-message COMMIT or build
takes seconds), so only a hang reaches it. Once the run is told to stop (SIGTERM, a cancel), no wait may end
later than `shutdown_seconds` after the stop, so the run returns within that bound whatever it waits on.

A wait on Postgres cannot be given a timeout (libpq has none on the client side, and a server that accepts
the bytes and never answers keeps the keepalives and `tcp_user_timeout` happy): a thread here watches it and
aborts the connection once it is overdue, and the wait then raises Stalled.
"""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TICK = 0.1  # seconds between two looks at the current wait


class Stalled(Exception):
    """A wait of the drain outlasted its bound: the run fails, and what it holds goes back to the queue."""


class Watchdog:
    def __init__(self, stall_seconds: float, shutdown_seconds: float, stop: threading.Event):
        self.stall_seconds, self.shutdown_seconds, self.stop = stall_seconds, shutdown_seconds, stop
        self._stop_deadline: float | None = None
        self._wait: tuple[float, Callable[[], None]] | None = None  # the current wait's deadline and abort
        self._expired = False
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="drain-watchdog", daemon=True)

    def __enter__(self) -> "Watchdog":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closed.set()
        self._thread.join()

    def left(self) -> float:
        """Seconds a wait that starts now may last."""
        now = time.monotonic()
        if self.stop.is_set() and self._stop_deadline is None:
            self._stop_deadline = now + self.shutdown_seconds
        ends = now + self.stall_seconds if self._stop_deadline is None else self._stop_deadline
        return max(0.0, min(ends, now + self.stall_seconds) - now)

    def stalled(self, what: str, waited: float) -> Stalled:
        stopping = " after the run was told to stop" if self.stop.is_set() else ""
        return Stalled(
            f"stalled: no answer from {what} in {waited:.0f} s{stopping}; the run failed, nothing uncommitted was "
            "deleted, and the messages it held are back in the queue"
        )

    @contextmanager
    def waiting(self, what: str, abort: Callable[[], None]) -> Iterator[None]:
        """A blocking call on `what`, cut short by `abort()` (which must make it return) once overdue."""
        started, bound = time.monotonic(), self.left()
        with self._lock:
            self._wait, self._expired = (started + bound, abort), False
        try:
            yield
        except Exception:
            if self._end_wait():
                raise self.stalled(what, time.monotonic() - started) from None
            raise
        if self._end_wait():
            raise self.stalled(what, time.monotonic() - started)

    def _end_wait(self) -> bool:
        """Whether the wait was aborted."""
        with self._lock:
            self._wait = None
            return self._expired

    def _watch(self) -> None:
        while not self._closed.wait(TICK):
            self.left()  # notes the stop's deadline as soon as the stop is set
            with self._lock:
                if self._wait is None or self._expired:
                    continue
                deadline, abort = self._wait
                if time.monotonic() < min(deadline, self._stop_deadline or deadline):
                    continue
                self._expired = True
                abort()  # under the lock: never the abort of a wait that has ended
