"""Run-failure alerts: every failed run of this code location is published to the SNS alert topic.

The alert carries the run id, the job and the first line of the innermost error, passed through a
conservative filter (logins_pipeline.errors.redact): never a message body or a field value.
"""

import json

import dagster as dg

from logins_pipeline.errors import innermost_message, redact
from logins_pipeline.resources.alerts import SNSAlertResource


def failure_error(context: dg.RunFailureSensorContext) -> str:
    """The first failed step's error, else the run's own failure message, redacted."""
    for event in context.get_step_failure_events():
        if event.step_failure_data.error is not None:
            return redact(innermost_message(event.step_failure_data.error))
    return redact(context.failure_event.message or "run failed")


def failure_alert(context: dg.RunFailureSensorContext) -> tuple[str, str]:
    """(subject, message) of the alert for a failed run."""
    run = context.dagster_run
    body = {
        "alert": "run_failed",
        "run_id": run.run_id,
        "job": run.job_name,
        "error": failure_error(context),
        "tags": {key: value for key, value in run.tags.items() if key.startswith("dagster/")},
    }
    return f"logins_pipeline: run of {run.job_name} failed", json.dumps(body, sort_keys=True)


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Publishes an alert to the SNS topic LOGINS_ALERT_SNS_TOPIC_ARN when a run fails (off if unset).",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: SNSAlertResource):
    subject, message = failure_alert(context)
    message_id = alerts.publish(subject, message)
    if message_id is None:
        context.log.info(f"run {context.dagster_run.run_id} failed; no alert topic configured")
    else:
        context.log.info(f"alert {message_id} published for run {context.dagster_run.run_id}")
