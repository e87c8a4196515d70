"""The resources, the console logger and the executor of every run, configured from the environment."""

import os
from typing import Any

import dagster as dg

from logins_pipeline import settings
from logins_pipeline.defs.logins.loggers import console_logger
from logins_pipeline.resources.alerts import SNSAlertResource
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource
from logins_pipeline.resources.sqs import SQSResource
from logins_pipeline.resources.vault import VaultResource


def _optional_env(name: str) -> dg.EnvVar | str:
    """An EnvVar reference if the variable is set, else "" (a missing dg.EnvVar fails the whole location)."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def resources_from_env() -> dict[str, Any]:
    """Resources configured from the environment; secrets stay EnvVar references (never shown in the UI).

    The vault is on when LOGINS_VAULT_KEY is set as the code location loads. Its value is still read at run
    time through dg.EnvVar, so a run of a location loaded with the vault fails if the key has gone
    (dg.EnvVar has no default) instead of quietly storing rows without their vault entries.
    """
    vault_key = dg.EnvVar(settings.VAULT_KEY) if os.environ.get(settings.VAULT_KEY) else None
    return {
        "sqs": SQSResource(queue_url=dg.EnvVar(settings.QUEUE_URL), region_name=dg.EnvVar(settings.AWS_REGION)),
        "postgres": PostgresResource(dsn=dg.EnvVar(settings.POSTGRES_DSN)),
        # the daily retention pass's login (logins_retention), not the writer's; unset, that pass fails alone
        "retention_postgres": PostgresResource(dsn=_optional_env(settings.RETENTION_DSN)),
        # the erase_user job's login (logins_erasure); unset, that job fails alone
        "erasure_postgres": PostgresResource(dsn=_optional_env(settings.ERASURE_DSN)),
        "masking": MaskingResource(
            key=dg.EnvVar(settings.MASKING_KEY),
            environment=dg.EnvVar(settings.ENVIRONMENT),
        ),
        "vault": VaultResource(key=vault_key, environment=dg.EnvVar(settings.ENVIRONMENT)),
        "alerts": SNSAlertResource(
            topic_arn=_optional_env(settings.ALERT_SNS_TOPIC_ARN), region_name=dg.EnvVar(settings.AWS_REGION)
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    # In process: a run's steps run in its run worker. Every job here is one step, or a few short ones, and the
    # drain starts build workers of its own; a step subprocess only added its start-up (re-importing dagster
    # and pandas, seconds before the first receive) and an extra process for a SIGTERM to go through.
    return dg.Definitions(
        resources=resources_from_env(), loggers={"console": console_logger}, executor=dg.in_process_executor
    )
