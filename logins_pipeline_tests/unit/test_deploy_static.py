"""Static checks of deploy/: the CloudFormation templates pass cfn-lint (pinned in the test extras), the
review's points hold in them (RDS, retained keys and data, ECS tasks and services), and the ECS instance
configuration is the packaged one but for its run launcher and TLS settings."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from logins_pipeline import settings
from logins_pipeline_tests.stack import ECS_TEMPLATE, PIPELINE_TEMPLATE, REPO

TEMPLATES = sorted((REPO / "deploy" / "cloudformation").glob("*.yaml"))
DATABASE_TEMPLATE = REPO / "deploy" / "cloudformation" / "database.yaml"

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
PACKAGED_DAGSTER_YAML = REPO / "logins_pipeline" / "dagster.yaml"
ECS_DAGSTER_YAML = REPO / "deploy" / "ecs" / "dagster.yaml"
HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
# What the code server and every run read in production: every setting but the local endpoints and access keys
# (boto3 talks to the regional endpoints, with the task role's or IRSA's credentials).
PRODUCTION_SETTINGS = {*settings.ALL, *settings.OPTIONAL, *settings.DAGSTER_PG} - {
    settings.AWS_ENDPOINT_URL_SQS,
    settings.AWS_ENDPOINT_URL_SNS,
    settings.AWS_ACCESS_KEY_ID,
    settings.AWS_SECRET_ACCESS_KEY,
}
# On Kubernetes the chart sets DAGSTER_HOME and the instance's storage (its ConfigMap and dagster-postgresql).
CHART_SETTINGS = {settings.DAGSTER_HOME, *settings.DAGSTER_PG}


def cfn_lint(*templates: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CFN_LINT), "--format", "parseable", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_templates_pass_cfn_lint():
    assert len(TEMPLATES) == 4
    result = cfn_lint(*TEMPLATES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_fails_a_broken_template(tmp_path):
    """The lint can fail: a queue with a misspelt property and a policy with a misspelt action."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        PIPELINE_TEMPLATE.read_text()
        .replace("MessageRetentionPeriod: 345600", "MessageRetentionPeriods: 345600")
        .replace("sqs:ReceiveMessage          #", "sqs:ReceiveMessages          #")
    )
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert "MessageRetentionPeriods" in result.stdout


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_no_secret_value_in_the_templates(template):
    text = template.read_text()
    assert "SecretString" not in text and "GenerateSecretString" not in text


def test_the_ecs_instance_is_the_packaged_one_but_for_the_launcher_and_tls():
    packaged = yaml.safe_load(PACKAGED_DAGSTER_YAML.read_text())
    ecs = yaml.safe_load(ECS_DAGSTER_YAML.read_text())
    assert ecs["run_launcher"]["class"] == "EcsRunLauncher"
    assert ecs["storage"]["postgres"]["postgres_db"].pop("params") == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ssl/certs/rds-global-bundle.pem",
    }
    del ecs["run_launcher"], packaged["run_launcher"]
    assert ecs == packaged


def _env_names(node) -> set[str]:
    """The variables a dagster.yaml section reads: `{env: NAME}` values and the names in env_vars."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return {
            name for key, value in node.items() for name in (set(value) if key == "env_vars" else _env_names(value))
        }
    if isinstance(node, list):
        return {name for item in node for name in _env_names(item)}
    return set()


@pytest.mark.parametrize("task_definition", ["DaemonTaskDefinition", "WebserverTaskDefinition"])
def test_the_launcher_and_the_storage_find_their_variables_on_the_daemon_and_webserver(task_definition):
    """Both instantiate the run launcher (the daemon launches, the webserver terminates) and the storage."""
    wanted = _env_names(yaml.safe_load(ECS_DAGSTER_YAML.read_text()))
    resources = load_cfn_yaml(ECS_TEMPLATE.read_text())["Resources"]
    [container] = resources[task_definition]["Properties"]["ContainerDefinitions"]
    present = {item["Name"] for item in container["Environment"]} | {item["Name"] for item in container["Secrets"]}
    assert wanted - present == set()
    assert {"AWS_DEFAULT_REGION", "LOGINS_RUN_TASK_ROLE_ARN", "DAGSTER_PG_PASSWORD"} <= wanted  # read as it should


def test_the_ecs_code_server_and_run_tasks_get_every_production_setting():
    """Environment or secret: a setting missing here is missing in production (as the retention's DSN was)."""
    [code] = resources(ECS_TEMPLATE)["CodeTaskDefinition"]["Properties"]["ContainerDefinitions"]
    code_names = {item["Name"] for item in code["Environment"]} | {item["Name"] for item in code["Secrets"]}
    assert PRODUCTION_SETTINGS - code_names == set()
    launcher = yaml.safe_load(ECS_DAGSTER_YAML.read_text())["run_launcher"]["config"]
    run_names = set(launcher["env_vars"]) | {secret["name"] for secret in launcher["secrets"]}
    assert PRODUCTION_SETTINGS - run_names == set()
    assert {settings.RETENTION_DSN, settings.ERASURE_DSN, settings.RETENTION_DAYS} <= run_names & code_names


def test_the_code_servers_secrets_are_the_run_tasks():
    """The same secret ARN under each name: the run's secrets are set on the daemon and webserver by reference."""
    ecs = resources(ECS_TEMPLATE)
    [code] = ecs["CodeTaskDefinition"]["Properties"]["ContainerDefinitions"]
    launcher = yaml.safe_load(ECS_DAGSTER_YAML.read_text())["run_launcher"]["config"]
    for task_definition in ("DaemonTaskDefinition", "WebserverTaskDefinition"):
        [container] = ecs[task_definition]["Properties"]["ContainerDefinitions"]
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        run_secrets = {secret["name"]: environment[secret["valueFrom"]["env"]] for secret in launcher["secrets"]}
        assert run_secrets == {item["Name"]: item["ValueFrom"] for item in code["Secrets"]}, task_definition


def _helm_secret_keys(text: str) -> set[str]:
    """The keys of the Kubernetes Secret logins-pipeline-secrets, as values.yaml names them beside each use."""
    named = re.findall(r"- name: logins-pipeline-secrets  # keys: (.+)", text)
    assert len(named) == 2  # the user deployment's and the run pods'
    assert len(set(named)) == 1, named
    return set(named[0].split(", "))


def test_the_helm_user_deployment_and_run_pods_get_every_production_setting():
    text = HELM_VALUES.read_text()
    values = yaml.safe_load(text)
    keys = _helm_secret_keys(text)
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert PRODUCTION_SETTINGS - CHART_SETTINGS - keys - {item["name"] for item in deployment["env"]} == set()
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert PRODUCTION_SETTINGS - CHART_SETTINGS - keys - {item.split("=")[0] for item in launcher["envVars"]} == set()
    assert {settings.RETENTION_DSN, settings.ERASURE_DSN} <= keys


def resources(template: Path) -> dict:
    return load_cfn_yaml(template.read_text())["Resources"]


def test_the_database_is_encrypted_private_backed_up_and_tls_only():
    database = resources(DATABASE_TEMPLATE)
    instance = database["Database"]
    assert (instance["DeletionPolicy"], instance["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")
    properties = instance["Properties"]
    assert properties["StorageEncrypted"] is True and properties["KmsKeyId"] == {"Ref": "DatabaseKey"}
    assert properties["PubliclyAccessible"] is False and properties["MultiAZ"] is True
    assert properties["DeletionProtection"] is True
    assert properties["BackupRetentionPeriod"] == {"Ref": "BackupRetentionDays"}  # > 0: point-in-time recovery
    assert database["DatabaseKey"]["Type"] == "AWS::KMS::Key"
    assert properties["ManageMasterUserPassword"] is True and "MasterUserPassword" not in properties
    assert properties["DBSubnetGroupName"] == {"Ref": "DatabaseSubnetGroup"}
    parameters = database[properties["DBParameterGroupName"]["Ref"]]["Properties"]
    assert parameters["Family"] == "postgres16" and parameters["Parameters"]["rds.force_ssl"] == "1"


def test_keys_secrets_and_queues_outlive_the_stack():
    for template in TEMPLATES:
        for name, resource in resources(template).items():
            if resource["Type"] in {"AWS::KMS::Key", "AWS::SecretsManager::Secret", "AWS::SQS::Queue"}:
                assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Retain", "Retain"), (
                    name
                )
            if resource["Type"] in {"AWS::SecretsManager::Secret", "AWS::SQS::Queue", "AWS::SNS::Topic"}:
                key = resource["Properties"].get("KmsKeyId") or resource["Properties"].get("KmsMasterKeyId")
                assert isinstance(key, dict) and key["Ref"].endswith("Key"), f"{name}: not the stack's own key"


def test_no_role_trusts_the_account_root_and_people_need_mfa():
    roles = {name: r for name, r in resources(PIPELINE_TEMPLATE).items() if r["Type"] == "AWS::IAM::Role"}
    for name, role in roles.items():
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert ":root" not in str(statement["Principal"]), name
        if name in {"OperatorRole", "PiiReaderRole"}:
            assert statement["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    parameters = load_cfn_yaml(PIPELINE_TEMPLATE.read_text())["Parameters"]
    for principal in ("OperatorPrincipalArn", "PiiReaderPrincipalArn", "PublisherPrincipalArn"):
        assert "Default" not in parameters[principal]


def test_every_ecs_task_runs_amd64_with_an_init_process_and_30_s_to_stop():
    for name, resource in resources(ECS_TEMPLATE).items():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        properties = resource["Properties"]
        assert properties["RuntimePlatform"] == {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"}, name
        [container] = properties["ContainerDefinitions"]
        assert container["LinuxParameters"] == {"InitProcessEnabled": True}, name
        assert container["StopTimeout"] == 30, name  # the drain's SIGTERM bound is 20 s
        assert name == "MigrateTaskDefinition" or container["HealthCheck"]["Command"][0] == "CMD", name


def test_services_wait_for_the_migrations_stop_failing_deployments_and_the_webserver_is_load_balanced():
    ecs = resources(ECS_TEMPLATE)
    services = {name: r["Properties"] for name, r in ecs.items() if r["Type"] == "AWS::ECS::Service"}
    assert set(services) == {"CodeService", "DaemonService", "WebserverService"}
    for name, service in services.items():
        assert service["DesiredCount"] == {"Fn::If": ["ServicesRun", 1, 0]}, name
        breaker = service["DeploymentConfiguration"]["DeploymentCircuitBreaker"]
        assert breaker == {"Enable": True, "Rollback": True}, name
        [group] = service["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]
        assert group["Ref"] == name.removesuffix("Service") + "SecurityGroup"  # a group per kind of task
    [target] = services["WebserverService"]["LoadBalancers"]
    assert ecs[target["TargetGroupArn"]["Ref"]]["Properties"]["TargetType"] == "ip"  # Fargate task IPs change
    # ServiceConnectDefaults takes a namespace's name or ARN, not its id.
    assert ecs["Cluster"]["Properties"]["ServiceConnectDefaults"] == {"Namespace": {"Fn::GetAtt": ["Namespace", "Arn"]}}
