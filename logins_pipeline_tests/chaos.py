"""`make chaos`: real faults in real runs of the job, many times over, and a count of what each left behind.

    python -m logins_pipeline_tests.chaos [--trials N] [--only TEXT ...]

Starts its own Postgres and LocalStack on free loopback ports in a temporary folder, gives every trial its
own queue pair and database, and prints one line per fault: trials; messages lost (a valid message not in
user_logins, or an invalid one not in login_quarantine); duplicated (a login stored more than once); and
left in the queues (visible, in flight or dead-lettered) after the recovery run. Each figure should be 0,
and the exit status is 1 if one is not. A scenario whose trial raises is a row marked ERROR, the others
still run, its traceback follows the table, and the exit status is 1. --only runs the scenarios whose name
starts with TEXT (any case): --only "INSERT revoked" the LocalStack row, --only "AWS-like SQS: INSERT" the other.

The faulted job runs as `logins-pipeline run` in a child process; the faults are a real SIGKILL at a
failpoint (failpoints.py), a real SIGTERM, a real Postgres shutdown and a trigger that rejects one message;
the recovery runs after them are in-process drains. The rows marked "AWS-like SQS" run the same faults with
the runs calling SQS through aws_like_sqs.py (AWS_LIKE: 20 ms a call, receives of 1..10 at random, 5% false
empties, 2% retryable errors). integration/test_faults.py runs the same trials in `make test`, with fewer
trials and without the rows marked chaos_only.
"""

import argparse
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import dagster as dg

from logins_pipeline import settings
from logins_pipeline.core.generate import generate_logins
from logins_pipeline.defs.logins import sensors
from logins_pipeline.drain.failpoints import VARIABLE as FAILPOINT
from logins_pipeline.drain.ingest import DrainLimits, drain
from logins_pipeline.drain.pipeline import MIN_MESSAGES_FOR_A_WORKER
from logins_pipeline.drain.redrive import redrive
from logins_pipeline.local.environment import LocalEnvironment
from logins_pipeline.local.services import LocalPostgres, free_port
from logins_pipeline.resources.sqs import SQS_BATCH
from logins_pipeline_tests.aws_like_sqs import AWS_LIKE, AwsLikeSQS
from logins_pipeline_tests.harness import DAGSTER_YAML, Pipeline, new_pipeline, sqs_resource
from logins_pipeline_tests.pg_blackhole import PostgresBlackhole

CLI = str(Path(sys.executable).parent / "logins-pipeline")
CHUNK = 20  # messages per transaction in the faulted runs: two receives, two DeleteMessageBatch calls
VISIBILITY = 2  # seconds; the heartbeat renews what has less than half of it left while a chunk is in hand
# Through AWS-like SQS a renewal may first wait out a retry's backoff (a second or two), and under load the server
# answers slowly: with 6 s, chunk-1 messages came back into chunk 2 while three suites shared the two cores.
AWS_LIKE_VISIBILITY = 10
CRASH_POINTS = ("after_receive", "after_commit", "mid_delete")
STALL = 5  # seconds: the faulted runs' stall timeout (--stall-timeout), where a hang must end them
EXIT_AFTER_SIGTERM = 20  # seconds: a run's process exits within this of SIGTERM (a drain's default bound is 15 s)
SLACK = 10  # seconds a run may take beyond a bound to start, and to end once its drain has returned
HELD_S = 3600  # seconds a failpoint holds a build worker that a trial signals the run about (it never waits that)
REJECT_POISON = """
CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN IF NEW.user_id = '{user_id}' THEN RAISE EXCEPTION 'poison message'; END IF; RETURN NEW; END $$;
CREATE TRIGGER reject_poison BEFORE INSERT ON user_logins FOR EACH ROW EXECUTE FUNCTION reject_poison();
"""


class Unexpected(AssertionError):
    """A fault was not injected as intended, or the run did not react to it as it must."""


@dataclass
class Count:
    lost: int = 0
    duplicated: int = 0
    left: int = 0

    def __add__(self, other: "Count") -> "Count":
        return Count(self.lost + other.lost, self.duplicated + other.duplicated, self.left + other.left)


@dataclass
class Messages:
    """Generated logins, each with its own user_id; every tenth has an invalid ip, to be quarantined."""

    bodies: list[str] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)

    @classmethod
    def generate(cls, count: int) -> "Messages":
        messages, tag = cls(), uuid.uuid4().hex[:8]
        for i, event in enumerate(generate_logins(count)):
            event["user_id"] = f"{tag}-{i}"
            invalid = i % 10 == 9
            if invalid:
                event["ip"] = "999.0.0.1"
            (messages.invalid if invalid else messages.valid).append(event["user_id"])
            messages.bodies.append(json.dumps(event))
        return messages


def stored(pipeline: Pipeline) -> int:
    return pipeline.scalar("SELECT (SELECT count(*) FROM user_logins) + (SELECT count(*) FROM login_quarantine)")


def count(pipeline: Pipeline, messages: Messages) -> Count:
    rows = Counter(u for (u,) in pipeline.query("SELECT user_id FROM user_logins"))
    quarantined = Counter(u for (u,) in pipeline.query("SELECT masked_body::json->>'user_id' FROM login_quarantine"))
    lost = sum(rows[u] == 0 for u in messages.valid) + sum(quarantined[u] == 0 for u in messages.invalid)
    duplicated = sum(n - 1 for n in (rows + quarantined).values())
    return Count(lost, duplicated, pipeline.left_in_queues())


class Child(subprocess.Popen):
    """A `logins-pipeline` process whose stderr a thread reads as it comes, so that a trial can wait for a
    line the process logs (its progress, a failpoint it reached) rather than for a time. Its build workers
    write to the same stderr."""

    def __init__(self, args: list[str], env: dict[str, str]):
        super().__init__(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.stderr is not None
        for line in self.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self, timeout: float = 300) -> str:
        """The whole of stderr, once the process has ended and every writer closed it (its build workers and
        their forkserver too, which exit with it)."""
        self.wait(timeout)
        self._reader.join(timeout)
        return "\n".join(self.lines)

    def logged(self, pattern: str) -> list[re.Match]:
        """The matches of `pattern` in the lines logged so far."""
        return [match for line in list(self.lines) if (match := re.search(pattern, line))]


def cli(pipeline: Pipeline, *args: str, failpoint: str | None = None) -> Child:
    env = {k: v for k, v in {**os.environ, **pipeline.env}.items() if k != FAILPOINT}
    if failpoint:
        env[FAILPOINT] = failpoint
    return Child([CLI, *args], env)


def run(pipeline: Pipeline, failpoint: str | None = None, **options: object) -> Child:
    """`logins-pipeline run` with its options as keywords: run(pipeline, chunk_size=100, receivers=1)."""
    return cli(
        pipeline,
        "run",
        *(f"--{name.replace('_', '-')}={value}" for name, value in options.items()),
        failpoint=failpoint,
    )


def finish(child: Child, returncode: int, fragment: str = "") -> str:
    """Wait for `child`; its last line of stderr. Unexpected unless it exited with `returncode` and that
    line holds `fragment`."""
    return finish_with_log(child, returncode, fragment).splitlines()[-1]


def finish_with_log(child: Child, returncode: int, fragment: str = "") -> str:
    """As `finish`, but the whole of stderr."""
    stderr = child.log()
    last = (stderr.strip().splitlines() or [""])[-1]
    if child.returncode != returncode or fragment not in last:
        raise Unexpected(f"exit {child.returncode} (wanted {returncode}), last line: {last[:300]}")
    return stderr.strip() or "\n"


def stored_before(log: str, chunk: int) -> int:
    """How many rows (user_logins + login_quarantine) the chunks before `chunk` stored, from a run's progress
    lines ("chunk N: R received, I inserted, D duplicates, Q quarantined", counting every chunk up to N).
    The progress of chunk N is logged after its COMMIT and before anything of chunk N+1 is committed or
    deleted, so a run killed in chunk N has logged chunk N-1."""
    lines = re.findall(r"chunk (\d+): \d+ received, (\d+) inserted, \d+ duplicates, (\d+) quarantined", log)
    rows = {int(n): int(inserted) + int(quarantined) for n, inserted, quarantined in lines}
    if chunk > 1 and chunk - 1 not in rows:
        raise Unexpected(f"the run logged no progress for chunk {chunk - 1}")
    return rows.get(chunk - 1, 0)


RUN_PROCESSES_EXIT_S = 10


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise Unexpected(f"timed out waiting until {what}")
        time.sleep(0.05)


def taken_while(running: Callable[[], bool], pipeline: Pipeline) -> list[dict]:
    """What another consumer receives from the pipeline's queue while `running()` (it hides what it takes)."""
    other, taken = sqs_resource(pipeline.env).client(), []
    while running():
        response = other.receive_message(
            QueueUrl=pipeline.sqs.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=1
        )
        taken += response.get("Messages", [])
    return taken


def recover(pipeline: Pipeline, visibility: int = VISIBILITY, chunk: int = CHUNK) -> None:
    """New runs until the queue is empty (for at most a minute), each once nothing is in flight: what a killed
    run, or a receive whose answer was lost, held hidden is visible again within the visibility timeout."""
    sqs = sqs_resource(pipeline.env, wait_time_seconds=0)
    deadline = time.monotonic() + 60
    while (depth := pipeline.sqs.queue_depth()).total and time.monotonic() < deadline:
        limits = DrainLimits(chunk_size=chunk, visibility_timeout=visibility)
        if depth.in_flight or not drain(sqs, pipeline.postgres, pipeline.keys, limits).received:
            time.sleep(0.2)


class Lab:
    """The services the trials share, one Dagster instance for all their runs (as on a real deployment;
    a new one per run would cost each run a second), and a Postgres of its own for the trial that stops it."""

    def __init__(self, environment: LocalEnvironment, env: dict[str, str], folder: Path, aws_like: AwsLikeSQS):
        self.environment, self.env, self.folder, self.aws_like = environment, env, folder, aws_like
        self.dagster_home = folder / "dagster_home"
        self.dagster_home.mkdir()
        (self.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
        self._own_postgres: LocalPostgres | None = None

    def pipeline(self, aws_like: bool = False, postgres: LocalPostgres | None = None) -> Pipeline:
        """A new slice; with `aws_like`, its runs (env) call SQS through the AWS-behaviour proxy, while the
        trial seeds and inspects the queue directly (pipeline.sqs)."""
        pipeline = new_pipeline(postgres or self.environment.postgres, self.env, self.folder / uuid.uuid4().hex[:12])
        pipeline.env[settings.DAGSTER_HOME], pipeline.dagster_home = str(self.dagster_home), self.dagster_home
        if aws_like:
            pipeline.env[settings.AWS_ENDPOINT_URL_SQS] = self.aws_like.endpoint_url
        return pipeline

    def own_postgres(self) -> LocalPostgres:
        if self._own_postgres is None:
            self._own_postgres = LocalPostgres(self.folder / "own-postgres", free_port())
        self._own_postgres.start()
        return self._own_postgres

    def close(self) -> None:
        if self._own_postgres is not None:
            self._own_postgres.stop()


# --- the trials: each returns what its fault left behind ----------------------------------------------


def crash_trial(lab: Lab, trial: int, point: str, aws_like: bool = False) -> Count:
    """kill -9 at `point` in chunk 1, 2 or 3 of (at least) 3, then run again once what it held is visible.
    Where the kill landed is read from the run's own progress lines, not from chunk sizes: a chunk may come
    back smaller than asked (a receive whose answer was lost leaves its messages hidden)."""
    pipeline, messages = lab.pipeline(aws_like), Messages.generate(3 * CHUNK)
    pipeline.seed(messages.bodies)
    chunk, visibility = 1 + trial % 3, AWS_LIKE_VISIBILITY if aws_like else VISIBILITY
    child = run(pipeline, f"{point}@{chunk}", chunk_size=CHUNK, receivers=1, visibility_timeout=visibility)
    before = stored_before(finish_with_log(child, -signal.SIGKILL), chunk)  # the chunks before this one
    committed, deleted = stored(pipeline), 3 * CHUNK - pipeline.sqs.queue_depth().total
    killed_where_meant = {
        "after_receive": committed == before and deleted <= committed,
        "after_commit": committed > before and deleted <= before,
        "mid_delete": committed > before and deleted == before + min(SQS_BATCH, committed - before),
    }[point]
    if not killed_where_meant:
        raise Unexpected(
            f"{point} in chunk {chunk}: {committed} stored and {deleted} deleted at the kill, "
            f"{before} in the chunks before"
        )
    recover(pipeline, visibility)
    return count(pipeline, messages)


@dataclass
class WorkerRun:
    """A run over three chunks big enough to be built by its two worker processes, faulted by a failpoint."""

    pipeline: Pipeline
    messages: Messages
    visibility: int
    child: Child

    @classmethod
    def start(cls, lab: Lab, aws_like: bool, failpoint: str, **options: object) -> "WorkerRun":
        pipeline, messages = lab.pipeline(aws_like), Messages.generate(3 * MIN_MESSAGES_FOR_A_WORKER)
        pipeline.seed(messages.bodies)
        visibility = AWS_LIKE_VISIBILITY if aws_like else VISIBILITY
        child = run(
            pipeline,
            failpoint,
            chunk_size=MIN_MESSAGES_FOR_A_WORKER,
            build_processes=2,
            visibility_timeout=visibility,
            **options,
        )
        return cls(pipeline, messages, visibility, child)

    def recovered(self) -> Count:
        """What is left once recovery runs have taken what the faulted run left in the queue."""
        recover(self.pipeline, self.visibility, chunk=MIN_MESSAGES_FOR_A_WORKER)
        return count(self.pipeline, self.messages)


def worker_crash_trial(lab: Lab, trial: int, aws_like: bool = False) -> Count:
    """kill -9 after the second of three COMMITs, with chunks big enough to be built by worker processes, each
    build slowed to 3 s: the third chunk is then being built in a worker when the run dies."""
    faulted = WorkerRun.start(lab, aws_like, "after_build:3,after_commit@2")
    pipeline = faulted.pipeline
    before = stored_before(finish_with_log(faulted.child, -signal.SIGKILL), 2)
    committed, deleted = stored(pipeline), 3 * MIN_MESSAGES_FOR_A_WORKER - pipeline.sqs.queue_depth().total
    if not (committed > before >= deleted):
        raise Unexpected(
            f"{committed} stored and {deleted} deleted at the kill after the second COMMIT, {before} in the first chunk"
        )
    return faulted.recovered()


def sigterm_trial(lab: Lab, trial: int) -> Count:
    """SIGTERM to a run over a backlog: it must finish the chunk in flight (COMMIT, delete), receive no
    more, and hand what it had received after that straight back to the queue."""
    pipeline, messages = lab.pipeline(), Messages.generate(20 * CHUNK)
    pipeline.seed(messages.bodies)
    child = run(pipeline, "after_commit:0.2", chunk_size=CHUNK, receivers=2, visibility_timeout=60)
    wait_until(lambda: stored(pipeline) >= CHUNK * (1 + trial % 3), "a chunk is stored")
    child.send_signal(signal.SIGTERM)
    finish(child, 1, "interrupted")
    depth, committed = pipeline.sqs.queue_depth(), stored(pipeline)
    if depth.in_flight or committed + depth.visible != 20 * CHUNK or not depth.visible:
        raise Unexpected(f"after SIGTERM: {committed} stored, {depth.visible} visible, {depth.in_flight} in flight")
    recover(pipeline, visibility=0)
    return count(pipeline, messages)


def bounded_sigterm_trial(lab: Lab, trial: int, chunk: int = 10_000) -> Count:
    """SIGTERM through SQS at 20 ms a call (a proxy of its own: latency and partial receives, no lost answers
    that would keep messages hidden) with `chunk`-message chunks while both build workers are busy: each
    worker's second build is held by a failpoint for an hour (the stall timeout raised past it), and the
    signal comes as soon as the run has stored a chunk and both workers have said they are held (the
    failpoint's line on stderr): the run then holds at least two chunks and receives a third, however
    long the load made it take to get there. The process must exit within EXIT_AFTER_SIGTERM seconds, its
    workers killed, having stored whole chunks only. What it held goes back at once while the bound allows
    (all of it, unless the SQS server is too slow to take 3,000 or more calls in the time: the rest is
    visible after the run's 30 s visibility timeout); the figures are printed."""
    total = 6 * chunk
    pipeline, messages = lab.pipeline(), Messages.generate(total)
    if pipeline.sqs.send_all(messages.bodies, senders=8):
        raise Unexpected("seeding failed")
    server = pipeline.env[settings.AWS_ENDPOINT_URL_SQS]
    with AwsLikeSQS(server, latency=0.02, receive="uniform") as proxy:
        pipeline.env[settings.AWS_ENDPOINT_URL_SQS] = proxy.endpoint_url
        child = run(
            pipeline,
            f"after_build@2:{HELD_S}",
            chunk_size=chunk,
            build_processes=2,
            visibility_timeout=30,
            stall_timeout=HELD_S,
        )
        pipeline.env[settings.AWS_ENDPOINT_URL_SQS] = server  # the recovery's, below

        def busy() -> bool:  # what the run logged and stored, not the clock: the deadline is only a backstop
            if child.poll() is not None:
                last = child.log().splitlines()[-3:]
                raise Unexpected(f"the run exited {child.returncode} before all its workers were busy: {last}")
            return len(held_workers(child)) == 2 and stored(pipeline) >= chunk

        wait_until(busy, "all workers busy", timeout=HELD_S)
        signalled = time.monotonic()
        child.send_signal(signal.SIGTERM)
        finish(child, 1, "interrupted")
        took = time.monotonic() - signalled
    depth, committed = pipeline.sqs.queue_depth(), stored(pipeline)
    print(
        f"SIGTERM with {chunk:,}-message chunks at 20 ms: exited in {took:.1f} s; {committed:,} stored, "
        f"{depth.visible:,} visible, {depth.in_flight:,} still in flight",
        file=sys.stderr,
        flush=True,
    )
    no_process_left(pipeline)
    if took > EXIT_AFTER_SIGTERM or committed % chunk or committed + depth.total != total:
        raise Unexpected(f"SIGTERM: exited after {took:.1f} s, {committed} stored, {depth}")
    wait_until(lambda: pipeline.sqs.queue_depth().in_flight == 0, "nothing is in flight", timeout=30)
    recover(pipeline, visibility=30, chunk=chunk)
    return count(pipeline, messages)


def held_workers(child: Child) -> set[str]:
    """The build workers of `child` held at their after_build failpoint (their pids), as they said."""
    return {match[1] for match in child.logged(r"failpoint after_build: holding .* pid (\d+)\)")}


def blackhole_trial(lab: Lab, trial: int, aws_like: bool = False) -> Count:
    """Postgres stops answering mid-COMMIT: the second COMMIT reaches the server (which commits it), its answer
    never comes back and the connection stays open (pg_blackhole.py). The run must fail as stalled within its
    stall timeout and leave nothing hidden: what it held is visible again at once (a receive whose answer the
    AWS-like proxy lost, within its visibility timeout)."""
    pipeline, messages = lab.pipeline(aws_like), Messages.generate(5 * CHUNK)
    pipeline.seed(messages.bodies)
    visibility = AWS_LIKE_VISIBILITY if aws_like else VISIBILITY
    with PostgresBlackhole(lab.environment.postgres.port, hang_at_commit=2) as blackhole:
        pipeline.env[settings.POSTGRES_DSN] = blackhole.dsn(pipeline.env[settings.POSTGRES_DSN])
        child = run(pipeline, chunk_size=CHUNK, receivers=1, visibility_timeout=visibility, stall_timeout=STALL)
        finish(child, 1, "stalled: no answer from Postgres")
        failed_after = time.monotonic() - blackhole.hung_at
    if not blackhole.hung.is_set() or failed_after > STALL + SLACK:
        raise Unexpected(f"the run failed {failed_after:.1f} s after the hang (bound: {STALL} s)")
    wait_until(lambda: pipeline.sqs.queue_depth().in_flight == 0, "nothing is in flight", timeout=visibility)
    recover(pipeline, visibility)
    return count(pipeline, messages)


def hung_worker_trial(lab: Lab, trial: int, aws_like: bool = False) -> Count:
    """Build workers that stop (SIGSTOP) at their first build, chunks in hand: the run fails as stalled within
    its stall timeout, kills them (no process of the run is left, stopped or not), and nothing stays hidden."""
    faulted = WorkerRun.start(lab, aws_like, "after_build:stop", stall_timeout=STALL)
    finish(faulted.child, 1, "stalled: no answer from a build worker")
    pipeline = faulted.pipeline
    no_process_left(pipeline)
    wait_until(lambda: pipeline.sqs.queue_depth().in_flight == 0, "nothing is in flight", timeout=faulted.visibility)
    return faulted.recovered()


def failed_entry_trial(lab: Lab, trial: int) -> Count:
    """Through a proxy of its own that fails one entry of every ChangeMessageVisibilityBatch and
    DeleteMessageBatch call of two entries or more (InternalError; with 20 ms a call and partial receives, and
    no lost answers, which would make a receive count twice), a run holds each chunk 4 s past its 2 s
    visibility timeout, so each message is renewed several times. Every failed renewal must be tried again
    before the message lapses, and every failed delete again: each message is received exactly once (the
    proxy's count of messages received equals those sent) and the queue is empty once the run has ended."""
    pipeline, messages = lab.pipeline(), Messages.generate(3 * CHUNK)
    pipeline.seed(messages.bodies)
    server = pipeline.env[settings.AWS_ENDPOINT_URL_SQS]
    with AwsLikeSQS(server, latency=0.02, receive="uniform", failed_entry=1.0) as proxy:
        pipeline.env[settings.AWS_ENDPOINT_URL_SQS] = proxy.endpoint_url
        child = run(pipeline, "after_receive:4", chunk_size=CHUNK, receivers=1, visibility_timeout=VISIBILITY)
        pipeline.env[settings.AWS_ENDPOINT_URL_SQS] = server
        finish(child, 0)
        calls = proxy.calls()
    left = pipeline.sqs.queue_depth().total
    if calls["receive_messages"] != len(messages.bodies) or left or not calls["errors"].get("failed entry"):
        raise Unexpected(
            f"{calls['receive_messages']} messages received of {len(messages.bodies)} sent, {left} left in the "
            f"queue, {calls['errors']} injected"
        )
    return count(pipeline, messages)


def revoked_insert_trial(
    lab: Lab, trial: int, intervals: int = 10, interval: float = 2.0, aws_like: bool = False
) -> Count:
    """INSERT on user_logins revoked from the runs' role (in this trial's database) for ten sensor intervals,
    then granted again. The sensor is evaluated every `interval` seconds (build_sensor_context; its backoff
    base shortened to the interval) and every run it asks for is launched (`logins-pipeline run`, waited
    for). The runs fail without receiving anything, the sensor backs off and says so; once the grant is
    back the backlog drains, the dead-letter queue holds nothing, and no message was received during the
    outage: on LocalStack as the quarantined tenth's receive counts show (a failed run that received would
    show in them); with `aws_like` (the sensor and the runs calling SQS through the harness, whose lost
    answers make a receive count twice anyway) as the harness's count of receives during the outage shows."""
    pipeline, messages = lab.pipeline(aws_like), Messages.generate(3 * CHUNK)
    home = lab.folder / uuid.uuid4().hex[:12]
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    pipeline.env[settings.DAGSTER_HOME] = str(home)  # an instance of its own: the sensor counts its runs only
    pipeline.seed(messages.bodies)
    sensor_sqs = sqs_resource(pipeline.env)  # through the harness with `aws_like`, as the runs
    visibility = AWS_LIKE_VISIBILITY if aws_like else VISIBILITY
    grant = "INSERT ON user_logins {} logins_writer"  # the role of the runs' login (migration 0002)
    with pipeline.postgres.connect() as conn:
        conn.execute(f"REVOKE {grant.format('FROM')}")
    reasons: list[str] = []
    failed = 0
    receives = lab.aws_like.calls()["by_action"].get("ReceiveMessage", 0)
    with mock.patch.object(sensors, "BACKOFF_BASE_SECONDS", interval), dg.DagsterInstance.from_config(str(home)) as i:

        def tick() -> None:
            nonlocal failed
            result = sensors.login_queue_sensor(dg.build_sensor_context(instance=i, resources={"sqs": sensor_sqs}))
            assert isinstance(result, dg.SensorResult)
            reasons.append(result.skip_reason.skip_message or "" if result.skip_reason else "")
            for _ in result.run_requests or []:
                failed += run(pipeline, chunk_size=CHUNK, visibility_timeout=visibility).wait() != 0
            time.sleep(interval)

        for _ in range(intervals):
            tick()
        receives = lab.aws_like.calls()["by_action"].get("ReceiveMessage", 0) - receives
        with pipeline.postgres.connect() as conn:
            conn.execute(f"GRANT {grant.format('TO')}")
        deadline = time.monotonic() + 120
        while pipeline.left_in_queues() and time.monotonic() < deadline:
            tick()
    twice = "SELECT count(*) FROM login_quarantine WHERE receive_count > 1"
    received = receives if aws_like else pipeline.scalar(twice)
    if not failed or not any(r.startswith("backing off") for r in reasons) or received:
        raise Unexpected(f"{failed} failed runs, {received} received in the outage, skip reasons: {reasons}")
    return count(pipeline, messages)


def no_process_left(pipeline: Pipeline) -> None:
    """Unexpected unless every process of the run is gone within RUN_PROCESSES_EXIT_S of its exit: the build
    workers are killed by the run, and the forkserver and multiprocessing's resource tracker (started with the
    workers) exit by themselves once the run's end closes their pipes, a moment after it."""
    queue_url = pipeline.env[settings.QUEUE_URL]
    deadline = time.monotonic() + RUN_PROCESSES_EXIT_S
    while left := processes_with(queue_url):
        if time.monotonic() > deadline:
            raise Unexpected(f"processes of the run left behind {RUN_PROCESSES_EXIT_S} s after it: {left}")
        time.sleep(0.1)


def processes_with(value: str) -> list[int]:
    """The processes whose environment holds `value` (a run's queue URL: the run and its build workers)."""
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if value.encode() in environ.read_bytes():
                pids.append(int(environ.parent.name))
        except OSError:  # gone, or not ours
            continue
    return pids


def postgres_stopped_trial(lab: Lab, trial: int) -> Count:
    """Postgres shut down in the middle of a run: the run fails with a clear error, deletes nothing it did
    not commit, and the next run after Postgres is back completes the rest."""
    postgres = lab.own_postgres()
    pipeline, messages = lab.pipeline(postgres=postgres), Messages.generate(10 * CHUNK)
    pipeline.seed(messages.bodies)
    child = run(pipeline, "after_commit:0.5", chunk_size=CHUNK, visibility_timeout=VISIBILITY)
    wait_until(lambda: stored(pipeline) >= CHUNK * (1 + trial % 2), "a chunk is stored")
    postgres.stop()
    finish(child, 1, "Postgres")
    in_queue = pipeline.sqs.queue_depth().total
    postgres.start()
    if stored(pipeline) + in_queue != 10 * CHUNK:
        raise Unexpected(f"Postgres stopped: {stored(pipeline)} stored, {in_queue} in the queue")
    recover(pipeline)
    return count(pipeline, messages)


def poison_trial(lab: Lab, trial: int) -> Count:
    """A message whose INSERT a trigger rejects: the rest of its chunk commits, it is redelivered until SQS
    dead-letters it, and once the trigger is gone `redrive` brings it back (a redrive killed between its
    send and its delete included) and it is stored once."""
    pipeline, messages = lab.pipeline(), Messages.generate(3 * CHUNK)
    with pipeline.postgres.connect() as conn:
        conn.execute(REJECT_POISON.format(user_id=messages.valid[trial % len(messages.valid)]))
    pipeline.seed(messages.bodies)
    sqs = sqs_resource(pipeline.env, wait_time_seconds=0)
    limits = DrainLimits(chunk_size=CHUNK, visibility_timeout=1)
    client = sqs.client()
    for _ in range(12):  # a run every visibility timeout, until SQS has dead-lettered it
        if sqs.dead_letter_depth(client) == 1 and sqs.queue_depth(client).total == 0:
            break
        if drain(sqs, pipeline.postgres, pipeline.keys, limits).failed > 1:
            raise Unexpected("more than the poison message failed")
        time.sleep(1.1)
    else:
        raise Unexpected("the poison message never reached the dead-letter queue")
    if stored(pipeline) != 3 * CHUNK - 1:
        raise Unexpected(f"the poison message held others back: {stored(pipeline)} stored")
    with pipeline.postgres.connect() as conn:
        conn.execute("DROP TRIGGER reject_poison ON user_logins")
    finish(cli(pipeline, "redrive", failpoint="after_send"), -signal.SIGKILL)
    wait_until(lambda: sqs.dead_letter_depth(client) == 1, "the killed redrive's message is back", timeout=30)
    redrive(sqs, pipeline.key)  # now a copy in the login queue from each redrive
    if drain(sqs, pipeline.postgres, pipeline.keys).duplicates != 1:
        raise Unexpected("the two redriven copies were not stored as one message")
    return count(pipeline, messages)


def parallel_runs_trial(lab: Lab, trial: int, runs: int = 4, total: int = 10_000, aws_like: bool = False) -> Count:
    """`runs` runs started together over `total` messages. On LocalStack no recovery run: nothing may be
    left. Through AWS-like SQS a receive whose answer was lost leaves its messages hidden for the visibility
    timeout, so one recovery run takes them after it."""
    pipeline, messages = lab.pipeline(aws_like), Messages.generate(total)
    if pipeline.sqs.send_all(messages.bodies):
        raise Unexpected("seeding failed")
    children = [run(pipeline, chunk_size=500, receivers=2, visibility_timeout=AWS_LIKE_VISIBILITY) for _ in range(runs)]
    for child in children:
        finish(child, 0)
    if aws_like:
        recover(pipeline, AWS_LIKE_VISIBILITY)
    return count(pipeline, messages)


@dataclass(frozen=True)
class Scenario:
    trial: Callable[[Lab, int], Count]
    trials: int
    workers: int = 2  # trials at a time, each on its own queue pair and database
    # In `make chaos` only, not in `make test` (test_faults.py): a slow repeat under the AWS-like harness of a
    # fault that `make test` injects on LocalStack.
    chaos_only: bool = False

    def run(self, lab: Lab) -> Count:
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return sum(pool.map(lambda i: self.trial(lab, i), range(self.trials)), Count())


def scenarios(
    trials: int,
    aws_like_trials: int | None = None,
    sigterm_chunk: int = 10_000,
    revoked: tuple[int, float] = (10, 2.0),
) -> dict[str, Scenario]:
    """The rows of the table, with `trials` trials per crash point (`aws_like_trials` through AWS-like SQS,
    default half as many: each costs seconds of latency and visibility timeouts) and fewer of the slower
    faults; the SIGTERM at 20 ms with `sigterm_chunk`-message chunks; INSERT revoked for `revoked` sensor
    intervals of so many seconds."""
    aws_like_trials = aws_like_trials or max(1, trials // 2)
    intervals, interval = revoked
    revoked_insert = functools.partial(revoked_insert_trial, intervals=intervals, interval=interval)
    return {
        **{f"kill -9 {point}": Scenario(functools.partial(crash_trial, point=point), trials) for point in CRASH_POINTS},
        "kill -9 with build workers": Scenario(worker_crash_trial, max(1, trials // 5)),
        "SIGTERM mid-run": Scenario(sigterm_trial, max(1, trials // 5)),
        "Postgres stopped mid-run": Scenario(postgres_stopped_trial, max(1, trials // 10), workers=1),
        "Postgres blackholed mid-COMMIT": Scenario(blackhole_trial, max(1, trials // 10)),
        "build worker hung (SIGSTOP)": Scenario(hung_worker_trial, max(1, trials // 10)),
        f"INSERT revoked for {intervals} sensor intervals": Scenario(revoked_insert, 1),
        f"SIGTERM at 20 ms, {sigterm_chunk:,}-message chunks": Scenario(
            functools.partial(bounded_sigterm_trial, chunk=sigterm_chunk), 1, workers=1
        ),
        "poison -> dead-letter -> redrive": Scenario(poison_trial, max(1, trials // 10)),
        "4 parallel runs, 10,000 messages": Scenario(parallel_runs_trial, 1),
        **{
            f"AWS-like SQS: kill -9 {point}": Scenario(
                functools.partial(crash_trial, point=point, aws_like=True), aws_like_trials
            )
            for point in CRASH_POINTS
        },
        "AWS-like SQS: kill -9 with build workers": Scenario(
            functools.partial(worker_crash_trial, aws_like=True), max(1, trials // 5), chaos_only=True
        ),
        "AWS-like SQS: 4 parallel runs, 10,000 messages": Scenario(
            functools.partial(parallel_runs_trial, aws_like=True), 1, chaos_only=True
        ),
        "AWS-like SQS: Postgres blackholed mid-COMMIT": Scenario(
            functools.partial(blackhole_trial, aws_like=True), max(1, trials // 10), chaos_only=True
        ),
        "AWS-like SQS: a failed entry in every visibility and delete batch": Scenario(failed_entry_trial, 1),
        "AWS-like SQS: build worker hung (SIGSTOP)": Scenario(
            functools.partial(hung_worker_trial, aws_like=True), max(1, trials // 10), chaos_only=True
        ),
        f"AWS-like SQS: INSERT revoked for {intervals} sensor intervals": Scenario(
            functools.partial(revoked_insert, aws_like=True), 1, chaos_only=True
        ),
    }


@dataclass
class Row:
    """A scenario's line of the table: what its trials left behind, or the error that ended them."""

    trials: int
    left: Count | None = None
    error: str = ""  # the traceback, when a trial raised


def table(rows: dict[str, Row]) -> str:
    width = max(len(name) for name in rows) + 2
    lines = [f"{'fault point':<{width}}{'trials':>7}{'lost':>7}{'duplicated':>12}{'left in queue':>15}"]
    for name, row in rows.items():
        if row.left is None:
            lines.append(f"{name:<{width}}{row.trials:>7}  ERROR: {row.error.strip().splitlines()[-1][:120]}")
        else:
            left = row.left
            lines.append(f"{name:<{width}}{row.trials:>7}{left.lost:>7}{left.duplicated:>12}{left.left:>15}")
    return "\n".join(lines)


def run_scenarios(lab: Lab, chosen: dict[str, Scenario]) -> dict[str, Row]:
    """Each scenario in turn; one that raises is a row marked as an error, and the others still run."""
    rows = {}
    for name, scenario in chosen.items():
        started = time.monotonic()
        try:
            rows[name] = Row(scenario.trials, scenario.run(lab))
        except Exception:
            rows[name] = Row(scenario.trials, error=traceback.format_exc())
        print(f"{name}: {scenario.trials} trials in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return rows


def chosen_scenarios(trials: int, only: list[str]) -> dict[str, Scenario]:
    """The scenarios whose names start with one of `only` (any case), or all of them."""
    every = scenarios(trials)
    chosen = {n: s for n, s in every.items() if not only or any(n.lower().startswith(o.lower()) for o in only)}
    if not chosen:
        raise SystemExit(f"no scenario matches {only}; the scenarios: {', '.join(every)}")
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="trials per crash point (default 10)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="only the scenarios whose name starts with TEXT (repeatable)",
    )
    args = parser.parse_args()
    chosen = chosen_scenarios(args.trials, args.only)
    with tempfile.TemporaryDirectory(prefix="logins-chaos-") as folder:
        environment = LocalEnvironment(Path(folder) / "services", sqs_port=free_port(), postgres_port=free_port())
        try:
            env = environment.up()
            with AwsLikeSQS(env[settings.AWS_ENDPOINT_URL_SQS], **AWS_LIKE) as aws_like:
                lab = Lab(environment, env, Path(folder), aws_like)
                try:
                    rows = run_scenarios(lab, chosen)
                finally:
                    lab.close()
        finally:
            environment.down()
    return report(rows)


def report(rows: dict[str, Row]) -> int:
    """Print the table, then the traceback of each row that is an error; the exit status: 0 if every row
    left nothing behind, else 1."""
    print(table(rows), flush=True)
    for name, row in rows.items():
        if row.error:
            print(f"\n{name}:\n{row.error}", file=sys.stderr)
    return 0 if all(row.left == Count() for row in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
