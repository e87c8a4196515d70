"""`logins-pipeline up` prepares what `make dev` needs: a Dagster instance stored in Postgres (database
`dagster`, apart from the data) with the run queue, and the SNS topic for alerts."""

from importlib import resources

import boto3
import dagster as dg
import pytest
from dagster_postgres import PostgresRunStorage

from logins_pipeline import settings

pytestmark = pytest.mark.integration


def test_up_makes_a_postgres_dagster_instance(local_services, monkeypatch):
    environment, env = local_services
    packaged = (resources.files("logins_pipeline") / "dagster.yaml").read_text()
    assert (environment.dagster_home / "dagster.yaml").read_text() == packaged
    assert env[settings.DAGSTER_HOME] == str(environment.dagster_home)
    assert env["DAGSTER_PG_DB"] == settings.DAGSTER_DATABASE != env[settings.POSTGRES_DSN].rsplit("/", 1)[1]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert instance.get_runs_count() >= 0  # connects and has its tables


def test_up_creates_the_alert_topic(local_services):
    _, env = local_services
    sns = boto3.client(
        "sns",
        region_name=env[settings.AWS_REGION],
        endpoint_url=env[settings.AWS_ENDPOINT_URL_SNS],
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    topic = env[settings.ALERT_SNS_TOPIC_ARN]
    assert topic.endswith(f":{settings.ALERT_TOPIC_NAME}")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic
