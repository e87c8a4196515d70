"""login_queue_sensor against the real SQS server, evaluated as the daemon would (build_sensor_context)."""

import json

import dagster as dg
import pytest

from logins_pipeline.defs.logins import sensors
from logins_pipeline.defs.logins.assets import ENDING_TAG, ingest_logins
from logins_pipeline.defs.logins.sensors import login_queue_sensor
from logins_pipeline.local.services import free_port
from logins_pipeline.resources.sqs import SQSResource

pytestmark = pytest.mark.integration


def evaluate(instance, sqs: SQSResource):
    return login_queue_sensor(dg.build_sensor_context(instance=instance, resources={"sqs": sqs}))


def test_skips_with_the_depth_when_the_queue_is_empty(pipeline, instance):
    result = evaluate(instance, pipeline.sqs)
    assert not result.run_requests
    assert "queue empty: 0 visible" in result.skip_reason.skip_message


def test_requests_a_run_when_there_is_a_backlog(pipeline, instance):
    pipeline.seed([json.dumps({"n": i}) for i in range(25)])
    result = evaluate(instance, pipeline.sqs)
    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["logins/queue_depth"] == "25"
    assert json.loads(result.cursor)["visible"] == 25


def test_skips_while_a_run_is_already_draining(pipeline, instance):
    pipeline.seed([json.dumps({"n": 1})])
    instance.add_run(dg.DagsterRun(job_name="ingest_logins_job", run_id="draining", status=dg.DagsterRunStatus.STARTED))
    result = evaluate(instance, pipeline.sqs)
    assert not result.run_requests
    assert "1 run(s) already draining (1 visible): draining" in result.skip_reason.skip_message


def test_skips_with_the_reason_when_sqs_is_unreachable(pipeline, instance):
    unreachable = SQSResource(
        queue_url=pipeline.sqs.queue_url,
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        max_attempts=1,
    )
    result = evaluate(instance, unreachable)
    assert "cannot read the queue depth" in result.skip_reason.skip_message


def test_a_large_backlog_gets_parallel_runs_within_the_limit(pipeline, instance, monkeypatch):
    monkeypatch.setattr(sensors, "MESSAGES_PER_RUN", 10)
    pipeline.seed([json.dumps({"n": i}) for i in range(35)])
    assert len(evaluate(instance, pipeline.sqs).run_requests) == 4  # ceil(35 / 10), at most 4
    instance.add_run(dg.DagsterRun(job_name="ingest_logins_job", run_id="one", status=dg.DagsterRunStatus.STARTED))
    assert len(evaluate(instance, pipeline.sqs).run_requests) == 3


def ending_run(instance, run_id: str = "ending") -> None:
    tags = {ENDING_TAG: "true"}
    instance.add_run(
        dg.DagsterRun(job_name="ingest_logins_job", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags)
    )


def test_its_runs_keep_draining_a_live_stream_until_idle(pipeline, instance):
    pipeline.seed([json.dumps({"n": 1})])
    [request] = evaluate(instance, pipeline.sqs).run_requests
    config = request.run_config["ops"][ingest_logins.op.name]["config"]
    assert config["idle_seconds"] == sensors.STREAM_IDLE_SECONDS > 0


def test_a_run_near_its_bounds_gets_a_successor_while_logins_keep_coming(pipeline, instance):
    """The stream's messages are in flight (the ending run holds them) and none is visible: the successor
    starts anyway, before the ending run stops, and only one."""
    ending_run(instance)
    pipeline.seed([json.dumps({"n": i}) for i in range(3)])
    assert len(pipeline.sqs.receive(pipeline.sqs.client(), 10, visibility_timeout=30)) == 3
    assert len(evaluate(instance, pipeline.sqs).run_requests) == 1
    instance.add_run(dg.DagsterRun(job_name="ingest_logins_job", run_id="next", status=dg.DagsterRunStatus.STARTING))
    result = evaluate(instance, pipeline.sqs)
    assert not result.run_requests
    assert "1 run(s) already draining (0 visible): next" in result.skip_reason.skip_message


def test_a_run_near_its_bounds_on_an_empty_queue_gets_no_successor(pipeline, instance):
    ending_run(instance)
    result = evaluate(instance, pipeline.sqs)
    assert not result.run_requests
    assert "queue empty" in result.skip_reason.skip_message
