"""The production image, built and run: docker-compose.yml's code server, webserver and daemon from the image
(podman, a Debian-made base; logins_pipeline_tests/image.py and compose_pod.py) drain the queue on a
Postgres and an SQS server of the test's own, started as `logins-pipeline up` starts them.

Slow: a cold build takes minutes (the base and the dependencies, cached for the next runs), then the daemon's
sensor needs up to its 30 s interval to see the backlog. The figures go to the test's recorded properties."""

import base64
import contextlib
import hashlib
import json
import secrets
import time
import uuid

import psutil
import psycopg
import pytest
import yaml

from logins_pipeline.core.generate import generate_logins
from logins_pipeline.local.dagster_ui import DagsterUI
from logins_pipeline.local.environment import LocalEnvironment
from logins_pipeline.local.services import free_port
from logins_pipeline_tests import image
from logins_pipeline_tests.compose_pod import DAGSTER_SERVICES, Pod, compose_services, describe
from logins_pipeline_tests.harness import sqs_resource

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDED = 1_000
APP_UID = "10001"
STOP_WITHIN_S = 10
NO_HEARTBEAT = "no daemon heartbeat in the instance's Postgres (is $DAGSTER_HOME/dagster.yaml in the image?)"
RUNS = """
{ runsOrError(filter: {pipelineName: "ingest_logins_job"}) { ... on Runs { results { status tags { key value } } } } }
"""
# Loads the ECS instance file as Dagster does (schema, env references) and its run launcher's class and config,
# without connecting to a database; then the Kubernetes launcher.
ECS_INSTANCE_CHECK = """
import importlib
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config
config, _ = dagster_instance_config("/opt/dagster/ecs")
launcher = config["run_launcher"]
launcher_class = getattr(importlib.import_module(launcher["module"]), launcher["class"])
result = process_config(launcher_class.config_type(), launcher["config"])
assert result.success, result.errors
from dagster_k8s import K8sRunLauncher
print(launcher_class.__name__, K8sRunLauncher.__name__)
"""


@contextlib.contextmanager
def step(name: str, pod: Pod | None = None):
    """Name the step that failed, with every container's log."""
    try:
        yield
    except Exception as error:
        logs = f"\n{describe(pod)}" if pod else ""
        raise AssertionError(f"step failed: {name}: {error}{logs}") from error


def wait_until(condition, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s"
        time.sleep(interval)
    return value


def env_references(node) -> set[str]:
    """The variables an instance file reads (`{env: NAME}`)."""
    if isinstance(node, dict):
        found = {node["env"]} if set(node) == {"env"} else set()
        return found.union(*(env_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(env_references(value) for value in node))
    return set()


@pytest.fixture(scope="module")
def engine() -> image.Engine:
    return image.Engine("podman")


@pytest.fixture
def built_image(engine, record_property):
    tag = f"localhost/logins-pipeline:test-{uuid.uuid4().hex[:8]}"
    with step("build the image (podman, Debian-made base)"):
        build = image.build(engine, tag, base="debian")
    record_property("image_build", build.summary())
    print(build.summary())
    yield tag
    engine.run("rmi", "--force", tag, check=False)


@pytest.fixture
def services(tmp_path):
    """Postgres and LocalStack as `logins-pipeline up` makes them (queue login-queue, databases logins and
    dagster, the alert topic), on free loopback ports: the compose file's names, only the ports differ."""
    environment = LocalEnvironment(tmp_path / "services", sqs_port=free_port(), postgres_port=free_port())
    env = environment.up()
    yield environment, env
    environment.down()


def test_compose_services_from_the_image_drain_the_queue(engine, built_image, services, tmp_path, record_property):
    with step("the image's ECS instance file loads, with its run launcher, and so does K8sRunLauncher"):
        check_launchers(engine, built_image)

    environment, env = services
    variables = {
        "POSTGRES_PASSWORD": environment.postgres.password,
        "LOGINS_MASKING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),  # production: no dev: key
    }
    ports = {"localstack": environment.sqs.port, "postgres": environment.postgres.port}
    compose = compose_services(variables, ports)
    pod = Pod(engine, f"lp-test-{uuid.uuid4().hex[:8]}", built_image, free_port())
    try:
        with step("start the code server and wait for its health check", pod):
            pod.start(compose["code"])
            pod.wait_healthy("code", timeout=180)
        with step("start the webserver and the daemon and wait for their health checks", pod):
            pod.start(compose["webserver"])
            pod.start(compose["daemon"])
            pod.wait_healthy("webserver", timeout=180)
            wait_until(lambda: daemon_heartbeats(environment), 120, NO_HEARTBEAT)
            pod.wait_healthy("daemon", timeout=120)

        events = list(generate_logins(SEEDED, seed=19))
        sqs = sqs_resource(env)
        assert sqs.send_bodies([json.dumps(event) for event in events]) == 0
        seeded_at = time.monotonic()
        with step("the daemon's sensor launches a run that stores every message and empties the queue", pod):
            wait_until(lambda: stored(environment) == SEEDED and left_in_queue(sqs) == 0, 420, "queue not drained")
        drained_s = time.monotonic() - seeded_at
        record_property("seed_to_empty_queue_s", f"{drained_s:.1f}")
        print(f"{SEEDED} messages seeded to an empty queue in {drained_s:.1f} s")

        ui = DagsterUI(pod.webserver_url)
        with step("the webserver's GraphQL shows the sensor's runs succeeded, and the assets' lineage", pod):
            runs = wait_until(lambda: finished_runs(ui), 120, "runs still in progress")
            assert {run["status"] for run in runs} == {"SUCCESS"}, runs
            sensors = {tag["value"] for run in runs for tag in run["tags"] if tag["key"] == "dagster/sensor_name"}
            assert sensors == {"login_queue_sensor"}, runs
            assert ui.lineage() == expected_lineage()

        with step("every process in the containers runs as uid 10001", pod):
            processes = {name: pod.processes(name) for name in DAGSTER_SERVICES}
            assert {user for rows in processes.values() for user, _, _ in rows} == {APP_UID}, processes

        with step("the containers' logs are JSON lines without plaintext PII", pod):
            check_logs(pod, {event[field] for event in events for field in ("ip", "device_id")})

        with step(f"podman stop ends each container within {STOP_WITHIN_S} s, leaving no process", pod):
            check_stop(pod, processes)
    finally:
        describe(pod, tmp_path / "container-logs.txt")  # whole logs; a failed step shows their ends
        pod.remove()


def test_an_rds_ca_bundle_goes_into_the_image_only_with_its_sha256(engine, tmp_path):
    """The ECS path of docs/deploy.md (step 4): `make image RDS_CA_BUNDLE=... RDS_CA_BUNDLE_SHA256=...`."""
    bundle = tmp_path / "global-bundle.pem"
    bundle.write_text("a stand-in for Amazon's bundle\n")
    tag = f"localhost/logins-pipeline:test-{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(image.ImageError, match="sha256sum"):
            image.build(engine, tag, "debian", bundle, "0" * 64)
        image.build(engine, tag, "debian", bundle, hashlib.sha256(bundle.read_bytes()).hexdigest())
        installed = engine.run("run", "--rm", tag, "cat", "/etc/ssl/certs/rds-global-bundle.pem").stdout
        assert installed == bundle.read_text()
        assert not image.RDS_CA_STAGED.exists()
    finally:
        engine.run("rmi", "--force", tag, check=False)


def check_launchers(engine: image.Engine, tag: str) -> None:
    ecs = yaml.safe_load((image.REPO / "deploy" / "ecs" / "dagster.yaml").read_text())
    env_args = [arg for name in sorted(env_references(ecs)) for arg in ("--env", f"{name}=placeholder")]
    result = engine.run("run", "--rm", *env_args, tag, "python", "-c", ECS_INSTANCE_CHECK, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["EcsRunLauncher", "K8sRunLauncher"]


def check_logs(pod: Pod, needles: set[str]) -> None:
    for name in DAGSTER_SERVICES:
        lines = [line for line in pod.logs(name).splitlines() if line.strip()]
        assert lines, f"{name} logged nothing"
        not_json = [line for line in lines if not is_json_object(line)]
        assert not not_json, f"{name}: {len(not_json)} lines that are not JSON, such as {not_json[:3]}"
        leaked = [line for line in lines if any(needle in line for needle in needles)]
        assert not leaked, f"{name} logged PII: {len(leaked)} lines"


def check_stop(pod: Pod, processes: dict[str, list[tuple[str, int, str]]]) -> None:
    for name in ["daemon", "webserver", "code"]:
        seconds = pod.stop(name)
        assert seconds < STOP_WITHIN_S, f"{name} took {seconds:.1f} s to stop (killed at the end of its grace)"
        alive = [args for _, pid, args in processes[name] if psutil.pid_exists(pid)]
        assert not alive, f"{name} left processes behind: {alive}"


def daemon_heartbeats(environment: LocalEnvironment) -> int:
    """Heartbeats in the instance's Postgres: the services found logins_pipeline/dagster.yaml in DAGSTER_HOME."""
    with psycopg.connect(environment.postgres.admin_dsn("dagster")) as conn:
        if conn.execute("SELECT to_regclass('daemon_heartbeats') IS NULL").fetchone() != (False,):
            return 0
        return scalar(conn, "SELECT count(*) FROM daemon_heartbeats")


def stored(environment: LocalEnvironment) -> int:
    with psycopg.connect(environment.postgres.admin_dsn("logins")) as conn:
        return scalar(conn, "SELECT count(*) FROM user_logins")


def scalar(conn: psycopg.Connection, sql: str) -> int:
    [(value,)] = conn.execute(sql).fetchall()
    return value


def left_in_queue(sqs) -> int:
    client = sqs.client()
    return sqs.queue_depth(client).total + (sqs.dead_letter_depth(client) or 0)


def finished_runs(ui: DagsterUI) -> list[dict]:
    runs = ui.graphql(RUNS)["runsOrError"]["results"]
    return runs if runs and all(run["status"] in {"SUCCESS", "FAILURE", "CANCELED"} for run in runs) else []


def expected_lineage() -> dict[str, set[str]]:
    from logins_pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): {parent.to_user_string() for parent in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False
