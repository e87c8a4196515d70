"""A run launched through the production ECS configuration: deploy/ecs/dagster.yaml's EcsRunLauncher (the
real dagster-aws code), in a process with the daemon's environment from deploy/cloudformation/dagster-ecs.yaml,
against moto's ECS (server mode, in a thread of this process; the launcher's boto3 calls go to it over HTTP).

The roles and secrets are those of deploy/cloudformation/logins-pipeline.yaml created in LocalStack (moto
answers as the same account 000000000000 in us-east-1, so the ARNs line up). Asserted: what
RegisterTaskDefinition and RunTask received (image, command, environment names, secret ARNs, roles, CPU and
memory, cluster and network), and that every call the launcher made is allowed by DagsterLauncherPolicy.

No container runs: moto records the task and reports it RUNNING. The ECS task metadata endpoint, which the
launcher reads to find its own task (use_current_ecs_task_config), is a small HTTP server of this test that
names a daemon task started in moto.
"""

import http.server
import json
import threading
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pytest
import yaml
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml
from moto.ecs.models import EC2ContainerServiceBackend
from moto.server import ThreadedMotoServer

from logins_pipeline.local.services import free_port
from logins_pipeline_tests import iam
from logins_pipeline_tests.launchers import CODE_SERVER_SECRETS, launchable_run
from logins_pipeline_tests.stack import ECS_TEMPLATE, REPO, create_pipeline_stack, policies_of_stack, policy

pytestmark = pytest.mark.integration

ACCOUNT, REGION = "000000000000", "us-east-1"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/logins-pipeline:2026.12.1"
ECS_DAGSTER_YAML = REPO / "deploy" / "ecs" / "dagster.yaml"
RUN_SECRETS = {
    "LOGINS_POSTGRES_DSN": "PostgresDsnSecretArn",
    "LOGINS_RETENTION_DSN": "RetentionDsnSecretArn",
    "LOGINS_ERASURE_DSN": "ErasureDsnSecretArn",
    "LOGINS_MASKING_KEY": "MaskingKeySecretArn",
    "LOGINS_VAULT_KEY": "VaultKeySecretArn",
    "DAGSTER_PG_PASSWORD": "DagsterPgPasswordSecretArn",
}
RUN_ENVIRONMENT = {
    "DAGSTER_HOME",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LOGINS_SQS_QUEUE_URL",
    "LOGINS_ALERT_SNS_TOPIC_ARN",
    "LOGINS_ENVIRONMENT",
    "LOGINS_LOG_FORMAT",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_DB",
    "LOGINS_RETENTION_DAYS",
    "LOGINS_VAULT_RETENTION_DAYS",
    "LOGINS_QUARANTINE_RETENTION_DAYS",
    "DAGSTER_RUN_JOB_NAME",
}


def daemon_environment(outputs: dict[str, str], parameters: dict[str, str]) -> dict[str, str]:
    """The daemon container's Environment in dagster-ecs.yaml, its Refs and ImportValues resolved."""
    template = load_cfn_yaml(ECS_TEMPLATE.read_text())
    values = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
    values.update({"AWS::Region": REGION, "LogGroup": values["LogGroupName"], **parameters})

    def resolve(value):
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return str(values[value["Ref"]])
        return outputs[value["Fn::ImportValue"]["Fn::Sub"].removeprefix("${PipelineStackName}-")]

    [container] = template["Resources"]["DaemonTaskDefinition"]["Properties"]["ContainerDefinitions"]
    return {item["Name"]: resolve(item["Value"]) for item in container["Environment"]}


@pytest.fixture
def moto_ecs(monkeypatch):
    """moto's server on a free port, answering as ACCOUNT; the launcher's clients pointed at it."""
    original = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def fargate_tolerant(task_definition):
        # moto sums container-level memory even for Fargate, where only the task's is required (dagster-aws
        # sets none per container): count a missing one as 0. Placement is not modelled for Fargate anyway.
        containers = [{"memory": 0, **c} for c in task_definition.container_definitions]
        return original(cast(Any, SimpleNamespace(container_definitions=containers)))

    monkeypatch.setattr(
        EC2ContainerServiceBackend, "_calculate_task_resource_requirements", staticmethod(fargate_tolerant)
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    assert server._server is not None
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    for name, value in {
        "MOTO_ACCOUNT_ID": ACCOUNT,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SNS"):
        monkeypatch.delenv(name, raising=False)
    yield endpoint
    server.stop()


def start_daemon_task(ecs, ec2, cluster: str) -> tuple[str, str, str]:
    """(task ARN, subnet, security group) of a 'daemon' task in `cluster`, awsvpc in a private subnet."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="logins-pipeline-tasks", Description="tasks", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="logins-pipeline-daemon",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="512",
        memory="1024",
        containerDefinitions=[{"name": "daemon", "image": IMAGE, "memory": 1024}],
    )
    [task] = ecs.run_task(
        cluster=cluster,
        taskDefinition="logins-pipeline-daemon",
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}},
    )["tasks"]
    return task["taskArn"], subnet, group


@pytest.fixture
def task_metadata(monkeypatch):
    """A stand-in for the ECS agent's task metadata endpoint (ECS_CONTAINER_METADATA_URI_V4)."""
    metadata: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(metadata).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{server.server_port}/v4")
    yield metadata
    server.shutdown()


def ecs_resource(service: str, params: dict, region: str) -> str:
    """The ARN an ECS call acts on (IAM evaluates RunTask and RegisterTaskDefinition on the revision's ARN)."""
    if service == "ecs":
        family = params.get("taskDefinition") or params.get("family")
        if family:
            return f"arn:aws:ecs:{region}:{ACCOUNT}:task-definition/{family.split('/')[-1].split(':')[0]}:1"
        if params.get("tasks") or params.get("task"):
            return params.get("task") or params["tasks"][0]
        if "resourceArn" in params:
            return params["resourceArn"]
    return iam.resource_of(service, params, region)


def ecs_context(service: str, params: dict) -> list[tuple[str, str]]:
    """The ecs:cluster condition key of a call that names its cluster (RunTask, DescribeTasks, StopTask)."""
    if service == "ecs" and "cluster" in params:
        cluster = params["cluster"]
        arn = cluster if cluster.startswith("arn:") else f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"
        return [("ecs:cluster", arn)]
    return []


def test_a_run_launched_on_ecs_gets_the_pipelines_image_settings_secrets_and_role(
    local_services, moto_ecs, task_metadata, monkeypatch, tmp_path
):
    _, base_env = local_services
    outputs = create_pipeline_stack(base_env)
    documents = policies_of_stack(base_env, outputs)
    env = daemon_environment(outputs, {"Image": IMAGE, "DagsterDbHost": "dagster.example.internal"})
    for name, value in {**env, **CODE_SERVER_SECRETS}.items():
        monkeypatch.setenv(name, value)

    # Clients for the setup, made before recording starts.
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    cluster = "logins-pipeline"
    daemon_task, subnet, group = start_daemon_task(ecs, ec2, cluster)
    # As on Fargate: the metadata names the cluster by its ARN.
    task_metadata.update({"Cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}", "TaskARN": daemon_task})

    recorder = iam.CallRecorder(resource=ecs_resource, context=ecs_context)
    launcher_config = yaml.safe_load(ECS_DAGSTER_YAML.read_text())["run_launcher"]
    with (
        recorder.recording(),
        launchable_run(launcher_config, IMAGE, tmp_path) as (instance, run, workspace),
    ):
        with recorder.role("daemon"):  # the run queue launches, run monitoring checks
            instance.launch_run(run.run_id, workspace)
            task_arn = instance.get_run_by_id(run.run_id).tags["ecs/task_arn"]
            health = instance.run_launcher.check_run_worker_health(instance.get_run_by_id(run.run_id))
            assert health.status.value == "RUNNING"
        with recorder.role("webserver"):  # the UI's Terminate: DescribeTasks, StopTask
            assert instance.run_launcher.terminate(run.run_id)

    requests = dict(recorder.requests)  # the last request of each operation
    registered = requests["RegisterTaskDefinition"]
    [container] = registered["containerDefinitions"]
    assert container["image"] == IMAGE
    assert {item["name"] for item in container["environment"]} == RUN_ENVIRONMENT
    assert {item["name"]: item["valueFrom"] for item in container["secrets"]} == {
        name: outputs[output] for name, output in RUN_SECRETS.items()
    }
    assert registered["taskRoleArn"] == outputs["PipelineRoleArn"]
    assert registered["executionRoleArn"] == outputs["TaskExecutionRoleArn"]
    assert (registered["cpu"], registered["memory"]) == ("2048", "4096")
    assert registered["requiresCompatibilities"] == ["FARGATE"]
    assert registered["runtimePlatform"] == {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"}
    assert container["linuxParameters"] == {"initProcessEnabled": True}
    assert "stopTimeout" not in container  # Fargate's default, 30 s: the drain's 20 s after SIGTERM fit
    assert container["logConfiguration"]["options"]["awslogs-group"] == "/ecs/logins-pipeline"

    sent_to_ecs = json.dumps(recorder.requests, default=str)
    assert not [value for value in CODE_SERVER_SECRETS.values() if value in sent_to_ecs]

    run_task = requests["RunTask"]
    assert run_task["taskDefinition"] == registered["family"] and registered["family"].startswith("logins-run_")
    assert run_task["cluster"].endswith(f":cluster/{cluster}") and run_task["launchType"] == "FARGATE"
    assert run_task["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": [subnet],
        "securityGroups": [group],
        "assignPublicIp": "DISABLED",
    }
    [override] = run_task["overrides"]["containerOverrides"]
    assert override["command"][:3] == ["dagster", "api", "execute_run"]
    assert (override["cpu"], override["memory"]) == (2048, 4096)

    # RunTask is also authorised as iam:PassRole on the task definition's two roles (passed to ECS tasks), and,
    # since it tags the task it creates, as ecs:TagResource on that task: actions of no API call of their own.
    passed = (("iam:PassedToService", "ecs-tasks.amazonaws.com"),)
    implied = [
        iam.Call("daemon", "RunTask", "iam:PassRole", registered["taskRoleArn"], passed),
        iam.Call("daemon", "RunTask", "iam:PassRole", registered["executionRoleArn"], passed),
        iam.Call("daemon", "RunTask", "ecs:TagResource", task_arn, (("ecs:CreateAction", "RunTask"),)),
    ]
    assert run_task["tags"]
    assert_each_task_role_allows_its_calls(documents, recorder.calls + implied)


def assert_each_task_role_allows_its_calls(documents: dict, calls: list[iam.Call]) -> None:
    """The daemon's calls by DagsterLauncherPolicy, the webserver's by DagsterWebserverPolicy, and no more."""
    assert {call.role for call in calls} == {"daemon", "webserver"}
    daemon = iam.coverage([policy(documents, "DagsterLauncherPolicy")], [c for c in calls if c.role == "daemon"])
    # Called by run monitoring only: logs:GetLogEvents to show the output of a run task that failed, and
    # ecs:StopTask to end a run past max_runtime_seconds (deploy/ecs/dagster.yaml).
    unneeded = [grant for grant in daemon.unneeded if grant[0] not in {"logs:GetLogEvents", "ecs:StopTask"}]
    assert not (daemon.denied or unneeded), iam.describe(daemon)
    webserver = iam.coverage([policy(documents, "DagsterWebserverPolicy")], [c for c in calls if c.role == "webserver"])
    assert not (webserver.denied or webserver.unneeded), iam.describe(webserver)
    assert {call.operation for call in calls if call.role == "webserver"} == {"DescribeTasks", "StopTask"}
