"""Start drains when the queue has a backlog: one run per MESSAGES_PER_RUN visible messages, at most
MAX_PARALLEL_RUNS at once (SQS hands each message to one receiver, so parallel runs never share work),
and never more while enough runs are already draining."""

import json
import math

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.defs.logins import jobs
from logins_pipeline.defs.logins.assets import IngestConfig
from logins_pipeline.resources.sqs import SQSResource

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


MESSAGES_PER_RUN = IngestConfig().max_messages
MAX_PARALLEL_RUNS = 4  # the same as the instance's limit on the logins_ingest pool (logins_pipeline/dagster.yaml)


def _active_run_ids(instance: dg.DagsterInstance) -> list[str]:
    filters = dg.RunsFilter(job_name=jobs.ingest_logins_job.name, statuses=IN_PROGRESS)
    return [run.run_id for run in instance.get_runs(filters=filters, limit=MAX_PARALLEL_RUNS)]


@dg.sensor(
    job=jobs.ingest_logins_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingest_logins_job run when login-queue has visible messages.",
)
def login_queue_sensor(context: dg.SensorEvaluationContext, sqs: SQSResource):
    try:
        depth = sqs.queue_depth()
    except (BotoCoreError, ClientError) as error:
        return dg.SensorResult(skip_reason=f"cannot read the queue depth: {error}")
    cursor = json.dumps({"visible": depth.visible, "in_flight": depth.in_flight})
    if depth.visible == 0:
        return dg.SensorResult(skip_reason=f"queue empty: 0 visible, {depth.in_flight} in flight", cursor=cursor)
    active = _active_run_ids(context.instance)
    wanted = min(MAX_PARALLEL_RUNS, math.ceil(depth.visible / MESSAGES_PER_RUN))
    if len(active) >= wanted:
        return dg.SensorResult(
            skip_reason=f"{len(active)} run(s) already draining ({depth.visible} visible): {', '.join(active)}",
            cursor=cursor,
        )
    requests = [dg.RunRequest(tags={"logins/queue_depth": str(depth.visible)}) for _ in range(wanted - len(active))]
    return dg.SensorResult(run_requests=requests, cursor=cursor)
