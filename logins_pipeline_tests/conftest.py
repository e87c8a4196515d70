"""Shared fixtures. Integration tests run against a real Postgres and a real LocalStack SQS server,
started once per session on free loopback ports in a temporary folder; each test gets its own queue
pair and its own database, so tests never see each other's data. As with `logins-pipeline up`, the
environment's LOGINS_POSTGRES_DSN is a logins_writer login, and the vault is on."""

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import hypothesis
import pytest

from logins_pipeline import settings
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.drain.failpoints import forget_passages
from logins_pipeline.local.dagster_ui import DagsterUI, dagster_ui
from logins_pipeline.local.environment import LocalEnvironment, dagster_instance_env, write_dagster_yaml
from logins_pipeline.local.services import LOCALSTACK_DEPLOY_SERVICES, LOCALSTACK_SERVICES, free_port
from logins_pipeline_tests.aws_like_sqs import AWS_LIKE, AwsLikeSQS
from logins_pipeline_tests.chaos import Count, Row, table
from logins_pipeline_tests.harness import Pipeline, new_pipeline

# Hypothesis without its per-example deadline (200 ms by default). On a machine whose CPUs are shared, the
# pandas-based properties meet it or not depending on the load, so it fails tests for what else is running,
# not for what they check. Speed is what the benchmarks (make bench) measure, never a timed test.
hypothesis.settings.register_profile("no_deadline", deadline=None)
hypothesis.settings.load_profile("no_deadline")

REPO = Path(__file__).parents[1]
SAMPLE_FILE = REPO / "logins_pipeline" / "fixtures" / "sample_logins.json"
# The webserver alone (no daemon) launches runs directly with the default coordinator, on a SQLite instance.
WEBSERVER_ONLY_DAGSTER_YAML = """
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


# What a developer's shell may hold that a test must not inherit: `eval "$(logins-pipeline env)"` exports the local
# services' AWS_*, LOGINS_*, DAGSTER_HOME and DAGSTER_PG_* (Postgres storage on a server that may be down).
CALLERS_SETTINGS = ("AWS_", "LOGINS_", "DAGSTER_")


def pytest_configure(config):
    """The suite is hermetic: the fixtures set what each test needs, nothing comes from the caller's shell (this
    runs in every xdist process too, before any test)."""
    for name in [name for name in os.environ if name.startswith(CALLERS_SETTINGS)]:
        del os.environ[name]


# Tables that tests record with record_property(name, text), printed at the end under these headings.
REPORTED_PROPERTIES = {
    "brute_force": "brute-force demonstration",  # test_token_privacy
    "iam_calls": "AWS calls of the code -> IAM action -> IAM role (deploy/cloudformation)",  # test_iam_least_privilege
}


def pytest_terminal_summary(terminalreporter, config):
    """Show the recorded tables (REPORTED_PROPERTIES) and the faults' table (rows recorded as "fault") at the
    end. Recorded properties travel with the reports, so this works with the suite split across processes."""
    reports = [r for group in terminalreporter.stats.values() for r in group if getattr(r, "when", "") == "call"]
    properties = [p for r in reports for p in r.user_properties]
    for name, text in properties:
        if name in REPORTED_PROPERTIES:
            terminalreporter.write_sep("-", REPORTED_PROPERTIES[name])
            terminalreporter.write_line(text)
    faults = {row[1]: Row(row[2], Count(*row[3:])) for name, row in sorted(p for p in properties if p[0] == "fault")}
    if faults:
        terminalreporter.write_sep("-", "faults injected: what each left behind")
        terminalreporter.write_line(table(faults))


def sample_events() -> list[dict]:
    return json.loads(SAMPLE_FILE.read_text())


def sample_pii_values() -> set[str]:
    return {e[f] for e in sample_events() for f in ("ip", "device_id") if f in e}


def as_messages(bodies: list[str], sent_timestamp_ms: int = 1_700_000_000_000) -> list[ReceivedMessage]:
    return [ReceivedMessage(str(uuid.uuid4()), "unused", sent_timestamp_ms, 1, body) for body in bodies]


@pytest.fixture(autouse=True)
def failpoints_count_from_zero():
    """A failpoint's @n counts passages in the process: without this, a test's "@1" would not fire after an
    earlier test in the same process passed that point (which test ran before depends on the order)."""
    forget_passages()


@pytest.fixture(scope="session")
def local_services(tmp_path_factory):
    environment = LocalEnvironment(
        tmp_path_factory.mktemp("local-services"),
        sqs_port=free_port(),
        postgres_port=free_port(),
        aws_services=LOCALSTACK_SERVICES + LOCALSTACK_DEPLOY_SERVICES,
    )
    env = environment.up()
    yield environment, env
    environment.down()


@pytest.fixture(scope="session")
def aws_like_proxy(local_services):
    _, env = local_services
    with AwsLikeSQS(env[settings.AWS_ENDPOINT_URL_SQS]) as proxy:
        yield proxy


@pytest.fixture
def aws_like(aws_like_proxy) -> AwsLikeSQS:
    """The AWS-behaviour proxy in front of the session's SQS server, set to AWS_LIKE and its counts reset;
    a test may configure it further."""
    aws_like_proxy.configure(**AWS_LIKE)
    aws_like_proxy.reset()
    return aws_like_proxy


@pytest.fixture
def pipeline(local_services, tmp_path, monkeypatch) -> Pipeline:
    environment, base_env = local_services
    slice_ = new_pipeline(environment.postgres, base_env, tmp_path)
    for variable, value in slice_.env.items():
        monkeypatch.setenv(variable, value)
    return slice_


@pytest.fixture
def instance(pipeline) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(pipeline.dagster_home)) as test_instance:
        yield test_instance


@pytest.fixture
def instance_dsn(pipeline, local_services, monkeypatch) -> str:
    """The shipped dagster.yaml in DAGSTER_HOME (as `make dev` and Compose run it), its storage in a fresh
    database of the test Postgres; that database's DSN."""
    environment, _ = local_services
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    environment.postgres.ensure_database(database)
    write_dagster_yaml(pipeline.dagster_home)
    for name, value in dagster_instance_env(environment.postgres, database).items():
        monkeypatch.setenv(name, value)
    return environment.postgres.admin_dsn(database)


@pytest.fixture
def postgres_instance(pipeline, instance_dsn) -> Iterator[dg.DagsterInstance]:
    """The instance of instance_dsn, for runs in this process."""
    with dg.DagsterInstance.from_config(str(pipeline.dagster_home)) as postgres_instance:
        yield postgres_instance


@pytest.fixture
def webserver(pipeline, tmp_path) -> Iterator[DagsterUI]:
    """dagster-webserver on this test's slice of the services, launching runs itself (no daemon)."""
    (pipeline.dagster_home / "dagster.yaml").write_text(WEBSERVER_ONLY_DAGSTER_YAML)
    with dagster_ui(REPO / "workspace.yaml", dict(os.environ), log_dir=tmp_path) as ui:
        ui.dismiss_onboarding()
        yield ui
