"""Static checks of deploy/: the CloudFormation templates pass cfn-lint (pinned in the test extras), and the
ECS instance configuration is the packaged one but for its run launcher and TLS settings."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cfnlint.decode.cfn_yaml import loads as load_cfn_yaml

from logins_pipeline_tests.stack import ECS_TEMPLATE, PIPELINE_TEMPLATE, REPO

CFN_LINT = Path(sys.executable).parent / "cfn-lint"
PACKAGED_DAGSTER_YAML = REPO / "logins_pipeline" / "dagster.yaml"
ECS_DAGSTER_YAML = REPO / "deploy" / "ecs" / "dagster.yaml"


def cfn_lint(*templates: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CFN_LINT), "--format", "parseable", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_templates_pass_cfn_lint():
    result = cfn_lint(PIPELINE_TEMPLATE, ECS_TEMPLATE)
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


@pytest.mark.parametrize("template", [PIPELINE_TEMPLATE, ECS_TEMPLATE], ids=lambda p: p.name)
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
