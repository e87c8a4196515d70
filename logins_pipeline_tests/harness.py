"""Isolated slices of the local services, shared by the pytest fixtures and `make chaos` (chaos.py): each
slice is its own queue pair and its own database on one Postgres and one LocalStack."""

import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from logins_pipeline import settings
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.vault import VaultKey, parse_vault_key
from logins_pipeline.local.environment import create_queues, ensure_login_roles, postgres_env
from logins_pipeline.local.services import LocalPostgres
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations
from logins_pipeline.resources.sqs import SQSResource

# A SQLite instance in the slice's DAGSTER_HOME: runs of one test never see another's.
DAGSTER_YAML = "telemetry:\n  enabled: false\n"


@dataclass
class Pipeline:
    """One isolated slice of the local services, and resources pointing at it. As with `logins-pipeline
    up`, env's LOGINS_POSTGRES_DSN is a logins_writer login and the vault is on."""

    env: dict[str, str]
    sqs: SQSResource
    postgres: PostgresResource  # the owner (superuser), to set up and inspect; runs use env's writer login
    masking: MaskingResource
    key: MaskingKey
    vault_key: VaultKey
    dagster_home: Path
    postgres_data_dir: Path

    @property
    def keys(self) -> PiiKeys:
        """The masking key alone: the vault off, as most drains in the tests run."""
        return PiiKeys(self.key)

    def resources(self) -> dict:
        return {"sqs": self.sqs, "postgres": self.postgres, "masking": self.masking}

    def seed(self, bodies: list[str]) -> None:
        assert self.sqs.send_bodies(bodies) == 0

    def query(self, sql: str, params=()) -> list[tuple]:
        with self.postgres.connect() as conn:
            return conn.execute(sql, params).fetchall()

    def scalar(self, sql: str, params=()):
        return self.query(sql, params)[0][0]

    def left_in_queues(self) -> int:
        """Messages still in the queue (visible, in flight or delayed) or in its dead-letter queue."""
        client = self.sqs.client()
        return self.sqs.queue_depth(client).total + (self.sqs.dead_letter_depth(client) or 0)


def sqs_resource(env: dict[str, str], **overrides) -> SQSResource:
    """An SQSResource for the queue, server and credentials of `env`, not of this process's environment."""
    settings_ = {
        "queue_url": env[settings.QUEUE_URL],
        "region_name": env[settings.AWS_REGION],
        "endpoint_url": env[settings.AWS_ENDPOINT_URL_SQS],
        "aws_access_key_id": env[settings.AWS_ACCESS_KEY_ID],
        "aws_secret_access_key": env[settings.AWS_SECRET_ACCESS_KEY],
        "visibility_timeout": 30,
    }
    return SQSResource(**{**settings_, **overrides})


def new_pipeline(postgres: LocalPostgres, base_env: dict[str, str], folder: Path) -> Pipeline:
    """A new queue pair on the SQS server of `base_env` and a new database on `postgres`; DAGSTER_HOME in
    `folder`."""
    name = f"t{uuid.uuid4().hex[:12]}"
    queue_url = create_queues(
        sqs_resource(base_env).client(), name=f"login-queue-{name}", dlq_name=f"login-queue-{name}-dlq"
    )
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = postgres.admin_dsn(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_migrations(conn)
    ensure_login_roles(postgres)
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {
        **base_env,
        **postgres_env(postgres, name),
        settings.QUEUE_URL: queue_url,
        settings.DAGSTER_HOME: str(dagster_home),
    }
    masking = MaskingResource(key=env[settings.MASKING_KEY], environment="development")
    return Pipeline(
        env=env,
        sqs=sqs_resource(env),
        postgres=PostgresResource(dsn=dsn),
        masking=masking,
        key=masking.masking_key(),
        vault_key=parse_vault_key(env[settings.VAULT_KEY], development=True),
        dagster_home=dagster_home,
        postgres_data_dir=postgres.data_dir,
    )
