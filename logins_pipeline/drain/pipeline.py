"""Chunks stored in a pipeline that keeps the CPU and Postgres busy at the same time.

Building a batch (parse, mask, validate) is Python CPU work; storing it is mostly Postgres's. A chunk big
enough to be worth it is built in a worker process, up to `processes` chunks ahead, while this process
stores the chunk before it. Chunks are still stored one at a time and in order, each in its own
transaction, so a failure stops the pipeline with nothing after it written. A small chunk (a demo, the
trickle a sensor tick finds) is built here: a round trip to a worker would cost more than it saves.

Workers are forked from a forkserver, not from the run: the run has threads (receivers, the heartbeat,
Dagster's own) when its first big chunk comes, and a lock one of them held at a fork (OpenSSL's, logging's,
the import lock, a hash object's) would stay locked forever in the child. The forkserver is a process of
its own, started (fork and exec) and kept for the rest of the process: it has one thread and this module
(pandas, pandera...) imported (build_server.py), so a worker forks from it in milliseconds, where a spawned
one would spend longer importing pandas than a 100,000-message drain takes. A drain over a backlog starts it
as it begins (start_build_server), so that its imports (a second or two) overlap the first chunk's receive
instead of delaying that chunk's build; a drain over a trickle never starts it.
Nothing of the run's memory reaches a worker: it gets the keys as secrets pickled through the pipe that
starts it (never the environment or a file), and the run's failpoints the same way. It ignores Ctrl-C (the
run decides how to stop) and exits when the run dies; the forkserver exits when the run and the workers
are gone: a kill -9 of a run leaves no orphans.

A wait on a build is bounded (watchdog.py): a worker that does not answer in time (hung, stopped) fails the
run, and workers still building when the pipeline closes (a failure, a stop) are killed, not waited for.
"""

import gc
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from typing import NamedTuple

import psycopg

from logins_pipeline.core.expiry import first_kept_day, today_utc
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import Batch, build_batch
from logins_pipeline.drain import failpoints
from logins_pipeline.drain.cpus import available_cpus
from logins_pipeline.drain.failpoints import failpoint
from logins_pipeline.drain.isolation import Stored, store
from logins_pipeline.drain.watchdog import TICK, Watchdog

BUILD_PROCESSES = min(4, available_cpus())  # the container's CPU limit, not the host's cores (cpus.py)
MIN_MESSAGES_FOR_A_WORKER = 1_000

_FORKSERVER = multiprocessing.get_context("forkserver")
_worker_keys: PiiKeys | None = None


def start_build_server() -> None:
    """Start the build workers' forkserver if it is not running: it imports the batch code in a process of its
    own (a fork and exec, safe while threads run) while this one goes on. The first worker then forks from a
    ready server."""
    _FORKSERVER.set_forkserver_preload(["logins_pipeline.drain.build_server"])
    multiprocessing.forkserver.ensure_running()


def _start_worker(keys: PiiKeys, failpoint_spec: str | None) -> None:
    global _worker_keys  # noqa: PLW0603 (a ProcessPoolExecutor initializer can only leave state in the module)
    gc.freeze()  # the forkserver's objects, inherited: the worker's collections need not walk (and copy) them
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The pool stops a worker with SIGTERM (when another died): it must not be caught.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_exit_with_the_run, daemon=True).start()
    failpoints.adopt(failpoint_spec)
    _worker_keys = keys


def _exit_with_the_run() -> None:
    """The run is this worker's multiprocessing parent (the forkserver only forked it): its sentinel, a pipe,
    closes when the run dies."""
    run = multiprocessing.parent_process()
    assert run is not None and run.sentinel is not None, "a worker is started by a run"
    multiprocessing.connection.wait([run.sentinel])
    os._exit(1)


def _build_in_worker(messages: list[ReceivedMessage], first_kept: date | None) -> Batch:
    assert _worker_keys is not None, "set by _start_worker"
    batch = build_batch(messages, _worker_keys, first_kept)
    failpoint("after_build")
    return batch


class _Builder:
    """Builds batches: big chunks in worker processes (started on the first), small ones here."""

    def __init__(self, keys: PiiKeys, processes: int):
        self.keys, self.processes = keys, processes
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, messages: list[ReceivedMessage], first_kept: date | None) -> Future:
        if self.processes and len(messages) >= MIN_MESSAGES_FOR_A_WORKER:
            try:
                return self._workers().submit(_build_in_worker, messages, first_kept)
            except BrokenProcessPool:  # a worker died (killed, out of memory): build here from now on
                self.processes = 0
        built: Future = Future()
        try:
            built.set_result(build_batch(messages, self.keys, first_kept))
        except Exception as error:
            built.set_exception(error)
        return built

    @property
    def ahead(self) -> int:
        """How many chunks may be building while the oldest is stored: none when they are built here."""
        return self.processes if self._pool is not None else 0

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            start_build_server()  # unless the drain started it already
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=_FORKSERVER,
                initializer=_start_worker,
                initargs=(self.keys, failpoints.current()),
            )
        return self._pool

    def close(self, building: list[Future]) -> None:
        """Stop the workers: at once if one is still `building` (its chunk is abandoned, or it hangs)."""
        if self._pool is None:
            return
        if all(built.done() for built in building):
            self._pool.shutdown(wait=True, cancel_futures=True)
            return
        for process in list(self._pool._processes.values()):  # 3.11 has no terminate_workers()
            process.kill()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _batch_or_none(built: Future) -> Batch | None:
    """None if the chunk could not be built (or its worker died): `store` then builds it again here, in
    parts, to isolate the message that fails."""
    try:
        return built.result()
    except Exception:
        return None


class _Building(NamedTuple):
    messages: list[ReceivedMessage]
    first_kept: date | None  # its messages sent before this day are expired: in its build, and its halves'
    built: Future


def _oldest_built(building: deque[_Building], watchdog: Watchdog) -> tuple[_Building, Batch | None] | None:
    """The oldest chunk and its batch, taken off `building` once built; None if the run is told to stop
    first (the chunk is abandoned: only a chunk already being stored is finished). Stalled if it takes
    longer than a wait may."""
    if watchdog.stop.is_set():
        return None
    oldest = building[0]
    started, bound = time.monotonic(), watchdog.left()
    while not wait([oldest.built], timeout=TICK).done:
        if watchdog.stop.is_set():
            return None
        if time.monotonic() - started > bound:
            raise watchdog.stalled("a build worker", time.monotonic() - started)
    building.popleft()
    return oldest, _batch_or_none(oldest.built)


def store_chunks(
    conn: psycopg.Connection,
    chunks: Iterable[list[ReceivedMessage] | None],
    keys: PiiKeys,
    processes: int = BUILD_PROCESSES,
    watchdog: Watchdog | None = None,
    retention_days: int | None = None,
) -> Generator[tuple[list[ReceivedMessage], Stored], None, None]:
    """(chunk, what became of it) for each chunk, in order, each as soon as its transaction is over.

    The oldest chunk is stored once `processes` newer ones are building (the workers always have the next
    chunk to build), or, if it is built, whenever `chunks` yields None for "no new chunk yet": the drain does
    while a receive is filling, so that on a slow queue a built chunk is committed (and deleted) meanwhile
    rather than held, and renewed, until the next one is in (at 50 ms a call, a chunk takes most of a
    minute to receive). Once `watchdog.stop` is set no further chunk is stored: the one being stored is
    finished, the rest are left to the caller to return to the queue.

    With `retention_days` (LOGINS_RETENTION_DAYS), a message sent before the first day kept is quarantined as
    expired; that day is taken as each chunk is submitted, so a run that goes on past midnight (and the
    retention pass at 00:15) stores no login of the day that expired meanwhile."""
    watchdog = watchdog or Watchdog(math.inf, math.inf, threading.Event())
    builder = _Builder(keys, processes)
    building: deque[_Building] = deque()

    def stored(ready: tuple[_Building, Batch | None]) -> tuple[list[ReceivedMessage], Stored]:
        chunk, batch = ready
        return chunk.messages, store(conn, chunk.messages, keys, batch, watchdog, chunk.first_kept)

    try:
        for messages in chunks:
            if messages is not None:
                first_kept = first_kept_day(today_utc(), retention_days)
                building.append(_Building(messages, first_kept, builder.submit(messages, first_kept)))
            while building and (len(building) > builder.ahead or (messages is None and building[0].built.done())):
                if (ready := _oldest_built(building, watchdog)) is None:
                    return
                yield stored(ready)
        while building and (ready := _oldest_built(building, watchdog)) is not None:
            yield stored(ready)
    finally:
        builder.close([chunk.built for chunk in building])
