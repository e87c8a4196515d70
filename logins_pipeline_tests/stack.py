"""deploy/cloudformation/logins-pipeline.yaml created through LocalStack's CloudFormation, on the test
session's LocalStack: a stack of its own per call (unique queue, topic and secret names), so tests that
share the server never see each other's resources."""

import uuid
from pathlib import Path

import boto3

from logins_pipeline import settings

REPO = Path(__file__).parents[1]
PIPELINE_TEMPLATE = REPO / "deploy" / "cloudformation" / "logins-pipeline.yaml"
ECS_TEMPLATE = REPO / "deploy" / "cloudformation" / "dagster-ecs.yaml"


def aws_client(service: str, env: dict):
    """A client of the local server named by `env` (LocalStack serves every service on one endpoint)."""
    return boto3.client(
        service, region_name=env[settings.AWS_REGION], endpoint_url=env[settings.AWS_ENDPOINT_URL_SQS],
        aws_access_key_id=env[settings.AWS_ACCESS_KEY_ID], aws_secret_access_key=env[settings.AWS_SECRET_ACCESS_KEY],
    )


def create_pipeline_stack(env: dict) -> dict[str, str]:
    """Create the template as a new stack; returns its outputs by key."""
    name = f"lp-{uuid.uuid4().hex[:10]}"
    parameters = {
        "QueueName": f"{name}-login-queue", "DeadLetterQueueName": f"{name}-login-queue-dlq",
        "AlertTopicName": f"{name}-alerts", "SecretPrefix": f"{name}/",
    }
    cloudformation = aws_client("cloudformation", env)
    cloudformation.create_stack(
        StackName=name, TemplateBody=PIPELINE_TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    )
    cloudformation.get_waiter("stack_create_complete").wait(StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
