"""The embedded local environment: LocalStack (SQS, SNS) + Postgres on loopback, queues, the alert topic,
schema, login roles, development keys, and a Dagster instance stored in Postgres.

All state lives under one git-ignored folder (default ./.local, or LOGINS_LOCAL_DIR). `up` writes the
environment the other commands need into <state>/env.json, which `logins-pipeline env` prints as exports.
The pipeline connects as a login in the `logins_writer` role, not as the superuser that owns the schema.
"""

import json
import os
from importlib import resources
from pathlib import Path

import boto3

from logins_pipeline import settings
from logins_pipeline.core.keys import development_key
from logins_pipeline.local.services import (
    LOCALSTACK_SERVICES,
    PG_DATABASE,
    PG_SUPERUSER,
    LocalPostgres,
    LocalServiceError,
    LocalSQS,
    private_secret,
    write_private,
)
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations

REGION = "us-east-1"
ACCOUNT = "000000000000"  # LocalStack's default account
MAX_RECEIVE_COUNT = 5  # receives before SQS moves a message that keeps failing to the dead-letter queue
VISIBILITY_TIMEOUT = 120
# DSN variable -> (the login role `up` makes, the group role it joins; groups come from migration 0002).
LOGIN_ROLES = {
    settings.POSTGRES_DSN: ("logins_writer_local", "logins_writer"),
    settings.ANALYST_DSN: ("analyst_local", "analyst"),
    settings.PII_READER_DSN: ("pii_reader_local", "pii_reader"),
    settings.RETENTION_DSN: ("logins_retention_local", "logins_retention"),
    settings.ERASURE_DSN: ("logins_erasure_local", "logins_erasure"),
}


def default_state_dir() -> Path:
    return Path(os.environ.get("LOGINS_LOCAL_DIR", Path.cwd() / ".local")).resolve()


def create_queues(
    client,
    name: str = settings.QUEUE_NAME,
    dlq_name: str = settings.DEAD_LETTER_QUEUE_NAME,
    visibility_timeout: int = VISIBILITY_TIMEOUT,
) -> str:
    """Create the dead-letter queue, then the queue with a redrive policy to it; returns the queue URL."""
    dlq_url = client.create_queue(QueueName=dlq_name)["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    return client.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": str(visibility_timeout)},
    )["QueueUrl"]


def ensure_login_roles(postgres: LocalPostgres) -> None:
    """The writer, analyst and pii_reader logins (cluster-wide; their groups come from migration 0002)."""
    for role, group in LOGIN_ROLES.values():
        postgres.ensure_login_role(role, group)


def postgres_env(postgres: LocalPostgres, dbname: str) -> dict[str, str]:
    """The DSN variables for database `dbname`: the writer, analyst and pii_reader logins, and the owner."""
    env = {name: postgres.login_dsn(role, dbname) for name, (role, _) in LOGIN_ROLES.items()}
    return {**env, settings.POSTGRES_ADMIN_DSN: postgres.admin_dsn(dbname)}


def dagster_instance_env(postgres: LocalPostgres, database: str = settings.DAGSTER_DATABASE) -> dict[str, str]:
    """The DAGSTER_PG_* values the instance's dagster.yaml reads: Dagster's storage in `database`."""
    values = (PG_SUPERUSER, postgres.password, "127.0.0.1", str(postgres.port), database)
    return dict(zip(settings.DAGSTER_PG, values, strict=True))


def write_dagster_yaml(dagster_home: Path) -> None:
    """The instance configuration shipped with the package (Postgres storage, run queue, limits)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text((resources.files("logins_pipeline") / "dagster.yaml").read_text())


class LocalEnvironment:
    def __init__(
        self,
        state_dir: Path | None = None,
        sqs_port: int | None = None,
        postgres_port: int | None = None,
        aws_services: tuple[str, ...] = LOCALSTACK_SERVICES,
    ):
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.env_file = self.state_dir / "env.json"
        self.key_file = self.state_dir / "masking.key"
        self.vault_key_file = self.state_dir / "vault.key"
        self.dagster_home = self.state_dir / "dagster_home"
        self.sqs = LocalSQS(
            self.state_dir, sqs_port or int(os.environ.get("LOGINS_LOCAL_SQS_PORT", "4566")), services=aws_services
        )
        self.postgres = LocalPostgres(
            self.state_dir, postgres_port or int(os.environ.get("LOGINS_LOCAL_POSTGRES_PORT", "54329"))
        )

    def up(self) -> dict[str, str]:
        """Start both services (idempotent), create the queues, the alert topic and the Dagster database,
        apply migrations, write env.json and the instance's dagster.yaml."""
        self.sqs.ensure_installed()
        self.postgres.start()
        self.sqs.start()
        queue_url = create_queues(self._client("sqs"))
        topic_arn = self._client("sns").create_topic(Name=settings.ALERT_TOPIC_NAME)["TopicArn"]
        with PostgresResource(dsn=self.postgres.dsn).connect() as conn:
            apply_migrations(conn)
        ensure_login_roles(self.postgres)
        self.postgres.ensure_database(settings.DAGSTER_DATABASE)
        env = {
            settings.AWS_ENDPOINT_URL_SQS: self.sqs.endpoint_url,
            settings.AWS_ENDPOINT_URL_SNS: self.sqs.endpoint_url,
            settings.AWS_REGION: REGION,
            settings.AWS_DEFAULT_REGION: REGION,
            settings.AWS_ACCESS_KEY_ID: "test",
            settings.AWS_SECRET_ACCESS_KEY: "test",
            settings.QUEUE_URL: queue_url,
            **postgres_env(self.postgres, PG_DATABASE),
            # Random keys made once per state folder (mode 0600), marked "dev:" so production refuses them.
            settings.MASKING_KEY: private_secret(self.key_file, development_key),
            settings.VAULT_KEY: private_secret(self.vault_key_file, development_key),
            settings.ENVIRONMENT: "development",
            settings.DAGSTER_HOME: str(self.dagster_home),
            settings.ALERT_SNS_TOPIC_ARN: topic_arn,
            **dagster_instance_env(self.postgres),
        }
        write_dagster_yaml(self.dagster_home)
        write_private(self.env_file, json.dumps(env, indent=2))
        return env

    def _client(self, service: str):
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.sqs.endpoint_url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def down(self) -> None:
        self.sqs.stop()
        self.postgres.stop()

    def env(self) -> dict[str, str]:
        if not self.env_file.exists():
            raise LocalServiceError(f"the local services are not set up in {self.state_dir}: run `logins-pipeline up`")
        return json.loads(self.env_file.read_text())
