"""Run-failure alerts through SNS, on the local LocalStack (SQS + SNS): a failed run is published to the
topic, and a queue subscribed to it receives the run id, the job and the error, without any PII."""

import json
import uuid

import dagster as dg
import pytest
from psycopg import sql

from logins_pipeline import settings
from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.defs.logins.alerts import run_failure_alert
from logins_pipeline.resources.alerts import SNSAlertResource
from logins_pipeline_tests.conftest import sample_events, sample_pii_values
from logins_pipeline_tests.stack import aws_client

pytestmark = pytest.mark.integration

# A database error that quotes a plaintext value, as a driver or a trigger might: the alert must drop it.
# (A documentation address, not a sample one: the function's text stays in Postgres's catalog and WAL,
# which test_cli's scan for the sample's PII reads.)
QUOTED_IP = "203.0.113.9"
FAIL_QUOTING_A_VALUE = """
CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'login from % rejected', {value}; END $$;
CREATE TRIGGER fail_insert BEFORE INSERT ON user_logins FOR EACH STATEMENT EXECUTE FUNCTION fail_insert();
"""


@pytest.fixture
def subscribed_topic(pipeline) -> tuple[str, str]:
    """(topic ARN, URL of an SQS queue subscribed to it with raw delivery)."""
    sns, sqs = aws_client("sns", pipeline.env), aws_client("sqs", pipeline.env)
    name = f"alerts-{uuid.uuid4().hex[:12]}"
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return topic_arn, queue_url


def failed_run_context(instance: dg.DagsterInstance, run_id: str, alerts: SNSAlertResource):
    """The context the daemon gives run_failure_alert for this run's RUN_FAILURE event."""
    failure = next(
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(run_id).records
        if record.event_log_entry.dagster_event_type == dg.DagsterEventType.RUN_FAILURE
    )
    run = instance.get_run_by_id(run_id)
    assert failure is not None and run is not None
    return dg.build_run_status_sensor_context(
        sensor_name=run_failure_alert.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alerts": alerts},
    ).for_run_failure()


def test_a_failed_run_is_published_without_pii(pipeline, instance, subscribed_topic):
    topic_arn, queue_url = subscribed_topic
    pipeline.seed([json.dumps(event) for event in sample_events()])
    with pipeline.postgres.connect() as conn:
        conn.execute(sql.SQL(FAIL_QUOTING_A_VALUE).format(value=sql.Literal(QUOTED_IP)))
    outcome = run_ingest_job(instance)
    assert not outcome.success

    alerts = SNSAlertResource(topic_arn=topic_arn, region_name=pipeline.env[settings.AWS_REGION])
    run_failure_alert(failed_run_context(instance, outcome.run_id, alerts))

    received = aws_client("sqs", pipeline.env).receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
    assert len(received) == 1
    body = received[0]["Body"]
    alert = json.loads(body)
    assert alert["alert"] == "run_failed"
    assert alert["run_id"] == outcome.run_id and alert["job"] == "ingest_logins_job"
    # the step's error was already redacted in the run (log_redaction), and again on its way out
    assert alert["error"].endswith("RaiseException: login from [redacted] rejected")
    assert QUOTED_IP not in body
    assert not [value for value in sample_pii_values() if value in body]


def test_without_a_topic_a_failed_run_sends_nothing_and_raises_nothing(pipeline, instance, monkeypatch):
    monkeypatch.setenv(settings.ENVIRONMENT, "production")  # the development key is refused: the run fails
    outcome = run_ingest_job(instance)
    assert not outcome.success
    alerts = SNSAlertResource(topic_arn="", region_name=pipeline.env[settings.AWS_REGION])
    run_failure_alert(failed_run_context(instance, outcome.run_id, alerts))
    assert alerts.publish("subject", "message") is None
