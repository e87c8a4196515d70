"""Shared fixtures. Integration tests run against a real Postgres and a real LocalStack SQS server,
started once per session on free loopback ports in a temporary folder; each test gets its own queue
pair and its own database, so tests never see each other's data. As with `logins-pipeline up`, the
environment's LOGINS_POSTGRES_DSN is a logins_writer login, and the vault is on."""

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import dagster as dg
import psycopg
import pytest

from logins_pipeline import settings
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.vault import VaultKey, parse_vault_key
from logins_pipeline.local.dagster_ui import DagsterUI, dagster_ui
from logins_pipeline.local.environment import LocalEnvironment, create_queues
from logins_pipeline.local.services import free_port
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations
from logins_pipeline.resources.sqs import SQSResource

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


def pytest_terminal_summary(terminalreporter):
    """Show the brute-force demonstration's figures (test_token_privacy) at the end of every run."""
    reports = [r for group in terminalreporter.stats.values() for r in group if getattr(r, "when", "") == "call"]
    for name, text in (p for r in reports for p in r.user_properties):
        if name == "brute_force":
            terminalreporter.write_sep("-", "brute-force demonstration")
            terminalreporter.write_line(text)


def sample_events() -> list[dict]:
    return json.loads(SAMPLE_FILE.read_text())


def sample_pii_values() -> set[str]:
    return {e[f] for e in sample_events() for f in ("ip", "device_id") if f in e}


def as_messages(bodies: list[str], sent_timestamp_ms: int = 1_700_000_000_000) -> list[ReceivedMessage]:
    return [ReceivedMessage(str(uuid.uuid4()), "unused", sent_timestamp_ms, 1, body) for body in bodies]


@pytest.fixture(scope="session")
def local_services(tmp_path_factory):
    environment = LocalEnvironment(
        tmp_path_factory.mktemp("local-services"), sqs_port=free_port(), postgres_port=free_port()
    )
    env = environment.up()
    yield environment, env
    environment.down()


@dataclass
class Pipeline:
    """One test's isolated slice of the local services, and resources pointing at it."""

    env: dict[str, str]
    sqs: SQSResource
    postgres: PostgresResource  # the owner (superuser), to set up and inspect; runs use env's writer login
    masking: MaskingResource
    key: MaskingKey
    vault_key: VaultKey
    dagster_home: Path
    postgres_data_dir: Path

    def resources(self) -> dict:
        return {"sqs": self.sqs, "postgres": self.postgres, "masking": self.masking}

    def seed(self, bodies: list[str]) -> None:
        assert self.sqs.send_bodies(bodies) == 0

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.postgres.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params=()):
        return self.query(sql, params)[0][0]


@pytest.fixture
def pipeline(local_services, tmp_path, monkeypatch) -> Pipeline:
    environment, base_env = local_services
    name = f"t{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "sqs", region_name=base_env[settings.AWS_REGION], endpoint_url=base_env[settings.AWS_ENDPOINT_URL_SQS],
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    queue_url = create_queues(client, name=f"login-queue-{name}", dlq_name=f"login-queue-{name}-dlq")
    with psycopg.connect(environment.postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = environment.postgres.admin_dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
    env = {
        **base_env,
        **environment.postgres_env(name),
        settings.QUEUE_URL: queue_url,
        settings.DAGSTER_HOME: str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    masking = MaskingResource(key=env[settings.MASKING_KEY], environment="development")
    return Pipeline(
        env=env,
        sqs=SQSResource(queue_url=queue_url, region_name=env[settings.AWS_REGION], visibility_timeout=30),
        postgres=PostgresResource(dsn=dsn),
        masking=masking,
        key=masking.masking_key(),
        vault_key=parse_vault_key(env[settings.VAULT_KEY], development=True),
        dagster_home=tmp_path / "dagster_home",
        postgres_data_dir=environment.postgres.data_dir,
    )


@pytest.fixture
def instance(pipeline) -> dg.DagsterInstance:
    with dg.instance_for_test(temp_dir=str(pipeline.dagster_home)) as test_instance:
        yield test_instance


@pytest.fixture
def webserver(pipeline, tmp_path) -> DagsterUI:
    """dagster-webserver on this test's slice of the services, launching runs itself (no daemon)."""
    (pipeline.dagster_home / "dagster.yaml").write_text(WEBSERVER_ONLY_DAGSTER_YAML)
    with dagster_ui(REPO / "workspace.yaml", dict(os.environ), log_dir=tmp_path) as ui:
        ui.dismiss_onboarding()
        yield ui
