"""Start drains when the queue has logins: one run per MESSAGES_PER_RUN visible messages, at most
MAX_PARALLEL_RUNS at once (SQS hands each message to one receiver, so parallel runs never share work),
and never more while enough runs are already draining; after failed runs, none until a backoff has passed.

The sensor's runs drain a live stream: each keeps receiving until the queue has been dry for
STREAM_IDLE_SECONDS, or until its message or time bound. A run that nears a bound tags itself
assets.ENDING_TAG; it no longer counts as draining, and while the queue has messages visible or in flight
its successor is started before it ends, so a steady stream never waits for a sensor tick and a run's
start-up (only the first login after an idle spell does).

Backoff: when the last n runs of the job failed (a database refusing writes, say), the sensor launches the
next only BACKOFF_BASE_SECONDS x 2^(n-1) after the last one ended (at most BACKOFF_MAX_SECONDS), and says
so in its skip reason. Each failed run has raised its alert already (run_failure_alert). A run that fails
costs the messages it received one receive each, and SQS dead-letters a message after maxReceiveCount
(5): relaunching at every tick would move a healthy backlog to the dead-letter queue within minutes.
"""

import json
import math
import time

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.defs.logins import assets, jobs
from logins_pipeline.defs.logins.assets import ENDING_TAG, IngestConfig
from logins_pipeline.resources.sqs import QueueDepth, SQSResource

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


MESSAGES_PER_RUN = IngestConfig().max_messages
MAX_PARALLEL_RUNS = 4  # the same as the instance's limit on the logins_ingest pool (logins_pipeline/dagster.yaml)
# The first login after an idle spell waits for a tick, a run's start-up (15-20 s here) and a batching window:
# ticks every 10 s keep that under 45 s, at one GetQueueAttributes call each (8,640 a day, $0.004).
TICK_SECONDS = 10
STREAM_IDLE_SECONDS = 60.0  # a sensor's run ends after the queue has been dry this long (IngestConfig.idle_seconds)
STREAM_RUN = dg.RunConfig(ops={assets.ingest_logins.op.name: IngestConfig(idle_seconds=STREAM_IDLE_SECONDS)})
BACKOFF_BASE_SECONDS = 30.0  # after one failed run (3 ticks)
BACKOFF_MAX_SECONDS = 1800.0
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def _active_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    filters = dg.RunsFilter(job_name=jobs.ingest_logins_job.name, statuses=IN_PROGRESS)
    return list(instance.get_runs(filters=filters, limit=2 * MAX_PARALLEL_RUNS))  # draining, and ending


def _wanted(depth: QueueDepth, ending: int) -> int:
    """Runs the queue needs: one per MESSAGES_PER_RUN visible; at least one to succeed runs that are ending
    while the queue still has logins (visible, or in flight: a stream the ending run is draining)."""
    wanted = min(MAX_PARALLEL_RUNS, math.ceil(depth.visible / MESSAGES_PER_RUN))
    return max(wanted, 1) if ending and depth.visible + depth.in_flight else wanted


def backing_off(instance: dg.DagsterInstance, now: float) -> str | None:
    """The skip reason while the job's last runs failed and their backoff has not passed; None otherwise."""
    filters = dg.RunsFilter(job_name=jobs.ingest_logins_job.name, statuses=FINISHED)
    records = instance.get_run_records(filters=filters, limit=16)  # the newest first
    statuses = [record.dagster_run.status for record in records]
    failures = next((n for n, status in enumerate(statuses) if status != dg.DagsterRunStatus.FAILURE), len(records))
    if not failures:
        return None
    wait = min(BACKOFF_BASE_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)
    last = records[0]
    left = (last.end_time or now) + wait - now
    if left <= 0:
        return None
    return (
        f"backing off: the last {failures} run(s) failed (the latest: {last.dagster_run.run_id}, see its alert); "
        f"the next in {left:.0f} s, {wait:.0f} s after it ended"
    )


@dg.sensor(
    job=jobs.ingest_logins_job,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingest_logins_job run when login-queue has visible messages, and a successor "
    "for a run that nears its bounds while logins keep coming.",
)
def login_queue_sensor(context: dg.SensorEvaluationContext, sqs: SQSResource):
    try:
        depth = sqs.queue_depth()
    except (BotoCoreError, ClientError) as error:
        return dg.SensorResult(skip_reason=f"cannot read the queue depth: {error}")
    cursor = json.dumps({"visible": depth.visible, "in_flight": depth.in_flight})
    active = _active_runs(context.instance)
    draining = [run.run_id for run in active if ENDING_TAG not in run.tags]
    wanted = _wanted(depth, ending=len(active) - len(draining))
    if wanted == 0:
        return dg.SensorResult(skip_reason=f"queue empty: 0 visible, {depth.in_flight} in flight", cursor=cursor)
    if reason := backing_off(context.instance, time.time()):
        return dg.SensorResult(skip_reason=f"{reason} ({depth.visible} visible)", cursor=cursor)
    if len(draining) >= wanted:
        return dg.SensorResult(
            skip_reason=f"{len(draining)} run(s) already draining ({depth.visible} visible): {', '.join(draining)}",
            cursor=cursor,
        )
    requests = [
        dg.RunRequest(run_config=STREAM_RUN, tags={"logins/queue_depth": str(depth.visible)})
        for _ in range(wanted - len(draining))
    ]
    return dg.SensorResult(run_requests=requests, cursor=cursor)
