"""The Dagster code location: `dagster dev -m logins_pipeline.definitions` or workspace.yaml."""

import os

import dagster as dg

from logins_pipeline import settings
from logins_pipeline.defs.logins.alerts import run_failure_alert
from logins_pipeline.defs.logins.analytics import analytics_automation, daily_analytics, daily_analytics_job
from logins_pipeline.defs.logins.assets import ingest_logins
from logins_pipeline.defs.logins.checks import user_logins_checks
from logins_pipeline.defs.logins.jobs import ingest_logins_job
from logins_pipeline.defs.logins.loggers import console_logger
from logins_pipeline.defs.logins.sensors import login_queue_sensor
from logins_pipeline.log_redaction import install_redaction
from logins_pipeline.resources.alerts import SNSAlertResource
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource
from logins_pipeline.resources.sqs import SQSResource
from logins_pipeline.resources.vault import VaultResource


def _optional_env(name: str) -> dg.EnvVar | str:
    """An EnvVar reference if the variable is set, else "" (a missing dg.EnvVar fails the whole location)."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def resources_from_env() -> dict:
    """Resources configured from the environment; secrets stay EnvVar references (never shown in the UI).

    The vault is on when LOGINS_VAULT_KEY is set as the code location loads. Its value is still read at run
    time through dg.EnvVar, so a run of a location loaded with the vault fails if the key has gone
    (dg.EnvVar has no default) instead of quietly storing rows without their vault entries.
    """
    vault_key = dg.EnvVar(settings.VAULT_KEY) if os.environ.get(settings.VAULT_KEY) else None
    return {
        "sqs": SQSResource(queue_url=dg.EnvVar(settings.QUEUE_URL), region_name=dg.EnvVar(settings.AWS_REGION)),
        "postgres": PostgresResource(dsn=dg.EnvVar(settings.POSTGRES_DSN)),
        "masking": MaskingResource(
            key=dg.EnvVar(settings.MASKING_KEY),
            environment=dg.EnvVar(settings.ENVIRONMENT),
        ),
        "vault": VaultResource(key=vault_key, environment=dg.EnvVar(settings.ENVIRONMENT)),
        "alerts": SNSAlertResource(
            topic_arn=_optional_env(settings.ALERT_SNS_TOPIC_ARN), region_name=dg.EnvVar(settings.AWS_REGION)
        ),
    }


install_redaction()


defs = dg.Definitions(
    assets=[ingest_logins, daily_analytics],
    asset_checks=[user_logins_checks],
    jobs=[ingest_logins_job, daily_analytics_job],
    sensors=[login_queue_sensor, run_failure_alert, analytics_automation],
    resources=resources_from_env(),
    loggers={"console": console_logger},
)
