"""store_chunks: big chunks are built in worker processes, and the outcome is the one a build in the run's
own process gives, faults included."""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from logins_pipeline.core import transform
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.drain import pipeline as pipeline_module
from logins_pipeline.drain.ingest import DrainLimits, _builds_in_workers
from logins_pipeline.drain.pipeline import MIN_MESSAGES_FOR_A_WORKER, store_chunks
from logins_pipeline_tests import workers
from logins_pipeline_tests.chaos import Messages, finish, run, wait_until
from logins_pipeline_tests.conftest import as_messages

pytestmark = pytest.mark.integration
CHUNK = MIN_MESSAGES_FOR_A_WORKER


def chunks(count: int) -> tuple[Messages, list[list]]:
    generated = Messages.generate(count)
    messages = as_messages(generated.bodies)
    return generated, [messages[i : i + CHUNK] for i in range(0, count, CHUNK)]


def table(pipeline) -> list[tuple]:
    return pipeline.query(
        "SELECT message_id, user_id, masked_ip, masked_device_id, app_version, create_date"
        " FROM user_logins ORDER BY message_id"
    )


def store_all(pipeline, parts, processes, keys: PiiKeys | None = None, retention_days: int | None = None) -> list:
    with pipeline.postgres.connect() as conn:
        chunks = store_chunks(conn, parts, keys or pipeline.keys, processes, retention_days=retention_days)
        return [stored for _, stored in chunks]


@pytest.fixture
def built_by(monkeypatch) -> list:
    """For each chunk store_chunks stores, in order: the pid of the process that built its batch, or the
    name of the error its build ended with."""
    seen: list = []
    real = pipeline_module._batch_or_none

    def noting(built):
        try:
            seen.append(built.result().built_by)
        except Exception as error:
            seen.append(type(error).__name__)
        return real(built)

    monkeypatch.setattr(pipeline_module, "_batch_or_none", noting)
    return seen


def test_a_built_chunk_is_stored_while_the_next_is_still_being_received(pipeline, built_by):
    """On a slow queue (AWS at 50 ms a call), the next chunk takes most of a minute to come in; the built one
    is committed meanwhile, not held in hand (and renewed) until then. The source says "nothing new yet" with
    None, as the drain does while a receive is filling."""
    _, parts = chunks(2 * CHUNK)
    events: list[str] = []

    def slow_queue() -> Iterator[list | None]:
        yield parts[0]
        deadline = time.monotonic() + 20
        while "stored" not in events and time.monotonic() < deadline:
            yield None
            time.sleep(0.05)
        events.append("second chunk in")
        yield parts[1]

    with pipeline.postgres.connect() as conn:
        for _ in store_chunks(conn, slow_queue(), PiiKeys(pipeline.key), processes=2):
            events.append("stored")

    assert events == ["stored", "second chunk in", "stored"]
    assert os.getpid() not in built_by  # the worker path, where chunks may be built ahead


def test_workers_store_what_the_run_itself_would(pipeline, built_by):
    generated, parts = chunks(3 * CHUNK)
    results = store_all(pipeline, parts, processes=2, keys=PiiKeys(pipeline.key, pipeline.vault_key))
    by_workers = table(pipeline)
    assert len(built_by) == 3 and os.getpid() not in built_by  # every batch built by a worker
    assert all(isinstance(pid, int) for pid in built_by)
    assert sum(r.inserted for r in results) == len(generated.valid)
    assert sum(r.quarantined for r in results) == len(generated.invalid)
    assert [r.committed for r in results] == parts  # in order, each chunk whole
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii") == len(generated.valid)

    with pipeline.postgres.connect() as conn:
        conn.execute("TRUNCATE user_logins, login_quarantine CASCADE")
    store_all(pipeline, parts, processes=0, keys=PiiKeys(pipeline.key, pipeline.vault_key))
    assert table(pipeline) == by_workers
    assert built_by[3:] == [os.getpid()] * 3


def test_a_chunk_a_worker_cannot_build_is_isolated_here(pipeline, monkeypatch, built_by):
    """A message makes the worker's build fail (the worker stand-in raises for it, as the run's own build
    does here); the chunk is then built again here, in parts, and only the message that fails alone is left
    out."""
    _, parts = chunks(2 * CHUNK)
    poison = parts[1][17] = workers.marked(parts[1][17], "raises")
    real = transform.parse_body

    def parse_body(body):
        if body == poison.body:
            raise RuntimeError("a bug this message triggers")
        return real(body)

    monkeypatch.setattr(transform, "parse_body", parse_body)
    monkeypatch.setattr(pipeline_module, "_build_in_worker", workers.build_or_die)
    results = store_all(pipeline, parts, processes=2)
    assert built_by[1] == "RuntimeError"  # raised in the worker
    assert [m.message_id for r in results for m in r.failed] == [poison.message_id]
    assert sum(len(r.committed) for r in results) == 2 * CHUNK - 1
    assert sum(r.inserted + r.quarantined for r in results) == 2 * CHUNK - 1


def half_of_today(parts: list[list]) -> list[list]:
    """`parts` with every other message sent now, the rest as sent (as_messages: in 2023)."""
    now_ms = int(time.time() * 1000)
    return [[dataclasses.replace(m, sent_timestamp_ms=now_ms) if i % 2 else m for i, m in enumerate(p)] for p in parts]


@pytest.mark.parametrize("worker_fails", [False, True], ids=["built-by-a-worker", "rebuilt-here-in-parts"])
def test_logins_past_retention_are_expired_in_workers_and_in_the_parts_of_a_failed_chunk(
    pipeline, monkeypatch, built_by, worker_fails
):
    """The first day kept reaches the worker that builds a chunk, and the rebuild here of a chunk whose
    worker failed (isolation.store)."""
    _, parts = chunks(CHUNK)
    parts = half_of_today(parts)
    if worker_fails:
        parts[0][0] = workers.marked(parts[0][0], "raises")  # only the worker stand-in raises for it
        monkeypatch.setattr(pipeline_module, "_build_in_worker", workers.build_or_die)
    [result] = store_all(pipeline, parts, processes=1, retention_days=30)
    assert len(built_by) == 1 and os.getpid() not in built_by  # a worker's pid, or the error it raised
    assert (built_by[0] == "RuntimeError") is worker_fails
    assert result.reasons["expired"] == CHUNK // 2
    assert result.inserted + result.reasons["invalid_ip"] == CHUNK // 2
    assert pipeline.scalar("SELECT count(*) FROM user_logins WHERE create_date < current_date - 29") == 0


def build_workers() -> list[psutil.Process]:
    """This process's build workers: the children of its forkserver (a child with the build_server preload),
    or, had they been forked from this process, its children with its command line."""
    me = psutil.Process()
    servers = [p for p in me.children() if "build_server" in " ".join(p.cmdline())]
    forked = [p for p in me.children() if p.cmdline() == me.cmdline()]
    return [worker for server in servers for worker in server.children()] + forked


@pytest.fixture
def unstuck() -> Iterator[threading.Event]:
    """A watchdog for a pool that cannot stop: after a minute it SIGKILLs this process's build workers, so
    that a hang fails the test instead of the suite. Set if it had to."""
    fired = threading.Event()

    def kill_workers() -> None:
        fired.set()
        for worker in build_workers():
            worker.kill()

    watchdog = threading.Timer(60, kill_workers)
    watchdog.start()
    yield fired
    watchdog.cancel()


def test_a_worker_that_dies_is_replaced_by_building_here(pipeline, monkeypatch, built_by, unstuck):
    """The first chunk is still being built by the other worker when the second one's worker dies: the pool
    stops that worker with a SIGTERM, which a Dagster run (execute_in_process, the run worker) maps to
    KeyboardInterrupt in its own process: a worker must not have that handler."""
    _, parts = chunks(4 * CHUNK)
    parts[0][0], parts[1][0] = workers.marked(parts[0][0], "slow"), workers.marked(parts[1][0], "dies")
    monkeypatch.setattr(pipeline_module, "_build_in_worker", workers.build_or_die)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # as in a Dagster run
    try:
        results = store_all(pipeline, parts, processes=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not unstuck.is_set(), "the pool could not stop the worker still building: the run would hang"
    assert built_by[:2] == ["BrokenProcessPool", "BrokenProcessPool"]  # the second chunk's worker died
    assert [r.committed for r in results] == parts
    assert sum(r.inserted + r.quarantined for r in results) == 4 * CHUNK


def test_a_lock_another_thread_holds_cannot_block_a_worker(pipeline, monkeypatch, unstuck):
    """The run has threads (receivers, the heartbeat, Dagster's) when its pool starts. Here one holds a lock
    the workers' build takes: a worker forked from this process would start with it held, and wait forever;
    one forked from the forkserver builds."""
    _, parts = chunks(2 * CHUNK)
    monkeypatch.setattr(pipeline_module, "_build_in_worker", workers.build_under_lock)
    held, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with workers.LOCK:
            held.set()
            done.wait()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    held.wait()
    try:
        results = store_all(pipeline, parts, processes=2)
    finally:
        done.set()
        holder.join()
    assert not unstuck.is_set(), "a worker waited for a lock held in the run: the run would hang"
    assert sum(r.inserted + r.quarantined for r in results) == 2 * CHUNK


def test_small_chunks_start_no_worker(pipeline, monkeypatch):
    monkeypatch.setattr(pipeline_module, "ProcessPoolExecutor", None)  # would fail if used
    _, parts = chunks(CHUNK)
    small = [parts[0][: CHUNK // 2], parts[0][CHUNK // 2 :]]
    results = store_all(pipeline, small, processes=2)
    assert sum(len(r.committed) for r in results) == CHUNK


WORKERS_OF_A_KILLED_RUN = textwrap.dedent("""
    import time
    import psutil
    from logins_pipeline.core.masking import MaskingKey
    from logins_pipeline.core.pii_keys import PiiKeys
    from logins_pipeline.drain.pipeline import _Builder
    from logins_pipeline_tests.conftest import as_messages
    builder = _Builder(PiiKeys(MaskingKey.from_secret(bytes(32))), 2)
    builder.submit(as_messages(["{}"] * 1000), None).result()
    builder.submit(as_messages(["{}"] * 1000), None).result()
    workers = list(builder._pool._processes)
    print(" ".join(str(p) for p in [*workers, *{psutil.Process(p).ppid() for p in workers}]), flush=True)
    time.sleep(60)
""")


def test_workers_exit_when_the_run_is_killed():
    """The workers, and the forkserver they were forked from, exit when the run is killed."""
    run = subprocess.Popen([sys.executable, "-c", WORKERS_OF_A_KILLED_RUN], stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    pids = [int(pid) for pid in run.stdout.readline().split()]
    assert len(pids) >= 2 and run.pid not in pids  # the workers (started as needed), and their parent
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in pids if alive(pid)] == []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_a_drain_over_a_backlog_starts_the_forkserver_before_its_first_chunk_is_in(pipeline):
    """The forkserver imports the batch code (a second or two) while the first chunk is received, not once it
    is in. A run over 2,000 messages is held right after its first receive (a failpoint, which says so on
    stderr, for 5 s): its forkserver is running by then. A backlog too small for a worker, or a run without workers,
    does not start it."""
    pipeline.seed(Messages.generate(2 * CHUNK).bodies)
    assert _builds_in_workers(pipeline.sqs, DrainLimits(chunk_size=CHUNK))
    assert not _builds_in_workers(pipeline.sqs, DrainLimits(chunk_size=CHUNK - 1))
    assert not _builds_in_workers(pipeline.sqs, DrainLimits(chunk_size=CHUNK, build_processes=0))
    child = run(pipeline, "after_receive@1:5", chunk_size=CHUNK, build_processes=2)
    wait_until(lambda: bool(child.logged("failpoint after_receive: holding")), "the first chunk is received", 60)
    servers = [p for p in psutil.Process(child.pid).children() if "build_server" in " ".join(p.cmdline())]
    finish(child, 0)
    assert len(servers) == 1
    pipeline.sqs.purge()
    pipeline.seed(Messages.generate(CHUNK - 1).bodies)
    assert not _builds_in_workers(pipeline.sqs, DrainLimits(chunk_size=CHUNK))
