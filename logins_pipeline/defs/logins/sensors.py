"""Start a drain when the queue has a backlog, without piling runs up while one is draining."""

import json

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline.defs.logins.jobs import ingest_logins_job
from logins_pipeline.resources.sqs import SQSResource

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _active_run_id(instance: dg.DagsterInstance) -> str | None:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=ingest_logins_job.name, statuses=IN_PROGRESS), limit=1)
    return runs[0].run_id if runs else None


@dg.sensor(
    job=ingest_logins_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an ingest_logins_job run when login-queue has visible messages.",
)
def login_queue_sensor(context: dg.SensorEvaluationContext, sqs: SQSResource):
    try:
        depth = sqs.queue_depth()
    except (BotoCoreError, ClientError) as error:
        return dg.SkipReason(f"cannot read the queue depth: {error}")
    cursor = json.dumps({"visible": depth.visible, "in_flight": depth.in_flight})
    if depth.visible == 0:
        return dg.SensorResult(
            skip_reason=f"queue empty: 0 visible, {depth.in_flight} in flight", cursor=cursor
        )
    active = _active_run_id(context.instance)
    if active:
        return dg.SensorResult(
            skip_reason=f"run {active} is already draining ({depth.visible} visible)", cursor=cursor
        )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(tags={"logins/queue_depth": str(depth.visible)})], cursor=cursor
    )
