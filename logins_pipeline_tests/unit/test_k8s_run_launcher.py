"""deploy/helm/values.yaml, read as Dagster's chart reads it: the run launcher configuration the chart writes
into the instance (its `dagsterYaml.runLauncher.k8s` template, for the keys this file uses) is loaded by
dagster-k8s's own K8sRunLauncher (pinned to the Dagster family), which builds a run's Job with its own
functions. Nothing is sent to a cluster: the Job is asserted as built.

Also checked against the packaged instance: the chart's `concurrency` section (written only with
enabled: true) has the same limits."""

import subprocess

import pytest
import yaml
from dagster_k8s.job import construct_dagster_k8s_job, get_job_name_from_run_id
from kubernetes.client import ApiClient

from logins_pipeline_tests.launchers import CODE_SERVER_SECRETS, CODE_SERVER_SETTINGS, launchable_run
from logins_pipeline_tests.stack import REPO

VALUES = REPO / "deploy" / "helm" / "values.yaml"
CHECKOV = REPO / ".local" / "checkov-3.3.30" / "bin" / "checkov"  # the Makefile's CHECKOV
PACKAGED_DAGSTER_YAML = REPO / "logins_pipeline" / "dagster.yaml"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/logins-pipeline:2026.12.1"
# The launcher keys this file sets, as the chart's template names them in the instance.
CHART_KEYS = {
    "envSecrets": "env_secrets",
    "envVars": "env_vars",
    "resources": "resources",
    "runK8sConfig": "run_k8s_config",
    "volumes": "volumes",
    "volumeMounts": "volume_mounts",
}
RUN_K8S_CONFIG_KEYS = {
    "containerConfig": "container_config",
    "podSpecConfig": "pod_spec_config",
    "jobSpecConfig": "job_spec_config",
    "jobMetadata": "job_metadata",
}
BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: unused}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def chart_run_launcher(values: dict) -> dict:
    """The instance's run_launcher as the chart renders it (dagsterYaml.runLauncher.k8s)."""
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert set(launcher) <= set(CHART_KEYS), f"keys this test does not render: {set(launcher) - set(CHART_KEYS)}"
    config = {
        "load_incluster_config": True,
        "job_namespace": "dagster",
        "image_pull_policy": "IfNotPresent",
        "service_account_name": values["serviceAccount"]["name"],
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [{"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"}],
        "env_secrets": [secret["name"] for secret in launcher["envSecrets"]],
        "env_vars": launcher["envVars"],
        "resources": launcher["resources"],
        "volumes": launcher["volumes"],
        "volume_mounts": launcher["volumeMounts"],
        "run_k8s_config": {RUN_K8S_CONFIG_KEYS[key]: value for key, value in launcher["runK8sConfig"].items()},
    }
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


@pytest.fixture(scope="module")
def run_job(values, tmp_path_factory):
    """The Kubernetes Job of a run, as K8sRunLauncher builds it from the chart's launcher configuration."""
    tmp_path = tmp_path_factory.mktemp("k8s")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    launcher_config = chart_run_launcher(values)
    # Outside a cluster: the kubeconfig above instead of the pod's service account token (nothing is sent).
    launcher_config["config"].update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    launcher_env = {
        "DAGSTER_HOME": "/opt/dagster/dagster_home",
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
        "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql",
        "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "dagster-pipeline-env",
    }
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in {**launcher_env, **CODE_SERVER_SETTINGS, **CODE_SERVER_SECRETS}.items():
            monkeypatch.setenv(name, value)
        with launchable_run(launcher_config, IMAGE, tmp_path) as (instance, run, _):
            launcher = instance.run_launcher
            # What K8sRunLauncher._launch_k8s_job_with_args builds before it sends the Job.
            container_context = launcher.get_container_context_for_run(run)
            return construct_dagster_k8s_job(
                job_config=container_context.get_k8s_job_config(job_image=IMAGE, run_launcher=launcher),
                args=["dagster", "api", "execute_run"],
                job_name=get_job_name_from_run_id(run.run_id),
                pod_name=get_job_name_from_run_id(run.run_id),
                component="run_worker",
                user_defined_k8s_config=container_context.run_k8s_config,
                labels={"dagster/job": run.job_name, "dagster/run-id": run.run_id},
                env_vars=[{"name": "DAGSTER_RUN_JOB_NAME", "value": run.job_name}],
            )


def test_a_runs_job_gets_the_secrets_resources_and_service_account(run_job):
    job = run_job
    pod = job.spec.template.spec
    [container] = pod.containers
    assert container.image == IMAGE
    assert pod.service_account_name == "logins-pipeline"
    assert "logins-pipeline-secrets" in {source.secret_ref.name for source in container.env_from if source.secret_ref}
    env = {variable.name: variable.value for variable in container.env}
    assert {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "LOGINS_SQS_QUEUE_URL",
        "LOGINS_ALERT_SNS_TOPIC_ARN",
        "LOGINS_ENVIRONMENT",
    } <= set(env)
    assert env["LOGINS_ENVIRONMENT"] == "production"
    assert container.resources.requests == {"cpu": "2", "memory": "4Gi"}
    assert container.resources.limits == {"cpu": "2", "memory": "4Gi"}  # the CPU limit = the build workers
    assert not [value for value in CODE_SERVER_SECRETS.values() if value in str(job.to_dict())]
    # The RDS CA bundle at the path of the DSNs' sslrootcert, from the ConfigMap.
    [mount] = [m for m in container.volume_mounts if m.mount_path == BUNDLE]
    [volume] = [v for v in pod.volumes if v.name == mount.name]
    assert (volume.config_map.name, mount.sub_path, mount.read_only) == ("rds-ca-bundle", "global-bundle.pem", True)
    # SIGTERM, then 30 s: room for the drain's 20 s. At most an hour per run.
    assert pod.termination_grace_period_seconds == 30
    assert job.spec.active_deadline_seconds == 3600


def test_checkov_passes_the_rendered_job(run_job, tmp_path):
    """The manifest that can be rendered here (the chart itself needs a helm binary): checkov's Kubernetes
    checks on a run's Job, in the launcher's namespace, with the skips its annotations give (values.yaml)."""
    manifest = {"apiVersion": "batch/v1", "kind": "Job", **ApiClient().sanitize_for_serialization(run_job)}
    manifest["metadata"]["namespace"] = "dagster"  # job_namespace: the launcher creates the Job there
    (tmp_path / "run-job.yaml").write_text(yaml.safe_dump(manifest))
    assert CHECKOV.exists(), "make install creates checkov's venv"
    result = subprocess.run(
        [str(CHECKOV), "--quiet", "--compact", "--skip-download", "--framework", "kubernetes", "-d", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0, Skipped checks: 6" in result.stdout
    assert run_job.spec.template.spec.security_context.run_as_user == 10001


@pytest.mark.parametrize(
    "where",
    [
        ("dagsterWebserver",),
        ("dagsterDaemon",),
        ("dagster-user-deployments", "deployments", 0),
        ("runLauncher", "config", "k8sRunLauncher"),
    ],
    ids=lambda where: where[0],
)
def test_every_pod_that_opens_a_dsn_has_the_rds_ca_bundle(values, where):
    """The chart's webserver and daemon images have no RDS bundle, nor does a default build of this one."""
    assert values["postgresql"]["postgresqlParams"] == {"sslmode": "verify-full", "sslrootcert": BUNDLE}
    pod = values
    for key in where:
        pod = pod[key]
    [mount] = [m for m in pod["volumeMounts"] if m["mountPath"] == BUNDLE]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "rds-ca-bundle" and mount["subPath"] == "global-bundle.pem"


def test_the_charts_concurrency_is_enabled_with_the_packaged_limits(values):
    packaged = yaml.safe_load(PACKAGED_DAGSTER_YAML.read_text())["concurrency"]
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert {
        "default_limit": concurrency["pools"]["defaultLimit"],
        "granularity": concurrency["pools"]["granularity"],
    } == packaged["pools"]
    assert concurrency["runs"]["maxConcurrentRuns"] == packaged["runs"]["max_concurrent_runs"]
    # The chart refuses maxConcurrentRuns in both places.
    assert "maxConcurrentRuns" not in values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]


def test_runs_are_sized_like_the_ecs_run_tasks(values):
    ecs = yaml.safe_load((REPO / "deploy" / "ecs" / "dagster.yaml").read_text())["run_launcher"]["config"]
    limits = values["runLauncher"]["config"]["k8sRunLauncher"]["resources"]["limits"]
    assert int(ecs["run_resources"]["cpu"]) == 1024 * int(limits["cpu"])
    assert int(ecs["run_resources"]["memory"]) == 1024 * int(limits["memory"].removesuffix("Gi"))
