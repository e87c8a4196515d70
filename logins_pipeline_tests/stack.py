"""deploy/cloudformation/logins-pipeline.yaml created through LocalStack's CloudFormation, on the test
session's LocalStack: a stack of its own per call (unique queue, topic and secret names), so tests that
share the server never see each other's resources."""

import json
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
        service,
        region_name=env[settings.AWS_REGION],
        endpoint_url=env[settings.AWS_ENDPOINT_URL_SQS],
        aws_access_key_id=env[settings.AWS_ACCESS_KEY_ID],
        aws_secret_access_key=env[settings.AWS_SECRET_ACCESS_KEY],
    )


def create_pipeline_stack(env: dict) -> dict[str, str]:
    """Create the template as a new stack; returns its outputs by key."""
    name = f"lp-{uuid.uuid4().hex[:10]}"
    parameters = {
        "QueueName": f"{name}-login-queue",
        "DeadLetterQueueName": f"{name}-login-queue-dlq",
        "AlertTopicName": f"{name}-alerts",
        "SecretPrefix": f"{name}/",
        # Required: no role trusts the account root. LocalStack, unlike IAM, does not check that they exist.
        "OperatorPrincipalArn": f"arn:aws:iam::000000000000:role/{name}-operators",
        "PiiReaderPrincipalArn": f"arn:aws:iam::000000000000:role/{name}-pii-readers",
        "PublisherPrincipalArn": f"arn:aws:iam::000000000000:role/{name}-apps",
    }
    cloudformation = aws_client("cloudformation", env)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=PIPELINE_TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    )
    cloudformation.get_waiter("stack_create_complete").wait(
        StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


def policies_of_stack(env: dict, outputs: dict) -> dict[str, dict]:
    """Every managed policy of the stack's roles, by name, as LocalStack's IAM holds it."""
    client = aws_client("iam", env)
    documents = {}
    for role_arn in (value for key, value in outputs.items() if key.endswith("RoleArn")):
        role = role_arn.rsplit("/", 1)[1]
        for attached in client.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            if ":aws:policy/" in attached["PolicyArn"]:  # AWS's own (AmazonECSTaskExecutionRolePolicy)
                continue
            policy = client.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
            version = client.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
            documents[attached["PolicyName"]] = version["PolicyVersion"]["Document"]
        for name in client.list_role_policies(RoleName=role)["PolicyNames"]:
            documents[f"{role}/{name}"] = client.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return {name: json.loads(d) if isinstance(d, str) else d for name, d in documents.items()}


def policy(documents: dict[str, dict], logical_id: str) -> dict:
    [document] = [d for name, d in documents.items() if f"-{logical_id}-" in name]
    return document
