"""deploy/cloudformation/logins-pipeline.yaml, created through LocalStack's CloudFormation: the queue pair
with its redrive policy, the alert topic, the empty secrets and the roles exist as the outputs say.

LocalStack (community) cannot create ECS, Service Connect or Cloud Map resources, so dagster-ecs.yaml is
linted (unit/test_deploy_static.py) and its run launcher tested against moto (test_ecs_run_launcher.py),
not created here. IAM is created but not enforced by LocalStack: test_iam_least_privilege.py evaluates the
policies itself."""

import json

import pytest
from botocore.exceptions import ClientError

from logins_pipeline_tests.stack import aws_client, create_pipeline_stack

pytestmark = pytest.mark.integration

SECRETS = (
    "PostgresDsnSecretArn",
    "RetentionDsnSecretArn",
    "ErasureDsnSecretArn",
    "MaskingKeySecretArn",
    "VaultKeySecretArn",
    "DagsterPgPasswordSecretArn",
    "AdminDsnSecretArn",
)
ROLES = {  # role output -> the managed policies it carries (their logical ids are part of their names)
    "PipelineRoleArn": {"PipelinePolicy"},
    "DagsterDaemonRoleArn": {"DagsterLauncherPolicy"},
    "DagsterWebserverRoleArn": {"DagsterWebserverPolicy"},
    "OperatorRoleArn": {"OperatorQueuePolicy", "OperatorPlatformPolicy"},
    "PiiReaderRoleArn": {"PiiReaderPolicy"},
    "PublisherRoleArn": {"PublisherPolicy"},
    "TaskExecutionRoleArn": {"AmazonECSTaskExecutionRolePolicy", "RuntimeSecretsPolicy"},
    "MigrateExecutionRoleArn": {"AmazonECSTaskExecutionRolePolicy", "AdminDsnPolicy"},
}


@pytest.fixture(scope="module")
def stack(local_services) -> tuple[dict, dict]:
    _, env = local_services
    return env, create_pipeline_stack(env)


def test_the_queue_has_its_dead_letter_queue_and_settings(stack):
    env, outputs = stack
    sqs = aws_client("sqs", env)
    assert outputs["QueueUrl"] == sqs.get_queue_url(QueueName=outputs["QueueUrl"].rsplit("/", 1)[1])["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=outputs["QueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == outputs["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": outputs["DeadLetterQueueArn"],
        "maxReceiveCount": 5,
    }
    assert (attributes["VisibilityTimeout"], attributes["MessageRetentionPeriod"]) == ("120", "345600")
    dead_letters = sqs.get_queue_attributes(QueueUrl=outputs["DeadLetterQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert dead_letters["QueueArn"] == outputs["DeadLetterQueueArn"]
    assert dead_letters["MessageRetentionPeriod"] == "1209600"
    assert "RedrivePolicy" not in dead_letters
    key_id = outputs["QueueKeyArn"].rsplit("/", 1)[1]
    assert {attributes["KmsMasterKeyId"], dead_letters["KmsMasterKeyId"]} == {key_id}  # the stack's key, not SSE-SQS


def test_the_alert_topic_exists(stack):
    env, outputs = stack
    attributes = aws_client("sns", env).get_topic_attributes(TopicArn=outputs["AlertTopicArn"])["Attributes"]
    assert attributes["TopicArn"] == outputs["AlertTopicArn"]
    assert attributes["KmsMasterKeyId"] == outputs["QueueKeyArn"].rsplit("/", 1)[1]  # alarms can publish to it


def test_the_alarms_page_through_the_alert_topic(stack):
    env, outputs = stack
    queues = {outputs["QueueUrl"].rsplit("/", 1)[1], outputs["DeadLetterQueueUrl"].rsplit("/", 1)[1]}
    alarms = aws_client("cloudwatch", env).describe_alarms()["MetricAlarms"]
    ours = {alarm["MetricName"]: alarm for alarm in alarms if outputs["AlertTopicArn"] in alarm["AlarmActions"]}
    assert set(ours) == {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "NumberOfNotificationsFailed",
    }
    for name in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
        [dimension] = ours[name]["Dimensions"]
        assert dimension["Name"] == "QueueName" and dimension["Value"] in queues


def test_the_secrets_exist_without_a_value(stack):
    env, outputs = stack
    assert set(SECRETS) == {output for output in outputs if output.endswith("SecretArn")}
    secrets = aws_client("secretsmanager", env)
    for output in SECRETS:
        described = secrets.describe_secret(SecretId=outputs[output])
        assert described["ARN"] == outputs[output]
        assert described["KmsKeyId"] in (outputs["SecretsKeyArn"], outputs["SecretsKeyArn"].rsplit("/", 1)[1])
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            secrets.get_secret_value(SecretId=outputs[output])


def test_each_role_carries_its_policies(stack):
    env, outputs = stack
    iam = aws_client("iam", env)
    for output, policies in ROLES.items():
        role_name = outputs[output].rsplit("/", 1)[1]
        attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
        names = {policy["PolicyName"] for policy in attached}
        assert {wanted for wanted in policies for name in names if wanted in name} == policies, (output, names)
