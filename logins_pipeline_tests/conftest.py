"""Shared fixtures. Integration tests run against a real Postgres and a real LocalStack SQS server,
started once per session on free loopback ports in a temporary folder; each test gets its own queue
pair and its own database, so tests never see each other's data."""

import json
import uuid
from pathlib import Path

import dagster as dg
import pytest

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.local.environment import LocalEnvironment
from logins_pipeline.local.services import free_port
from logins_pipeline_tests.chaos import table
from logins_pipeline_tests.harness import Pipeline, new_pipeline

CHAOS_TABLE = pytest.StashKey[dict]()

SAMPLE_FILE = Path(__file__).parents[1] / "logins_pipeline" / "fixtures" / "sample_logins.json"


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


@pytest.fixture
def pipeline(local_services, tmp_path, monkeypatch) -> Pipeline:
    environment, base_env = local_services
    slice_ = new_pipeline(environment.postgres, base_env, tmp_path)
    for variable, value in slice_.env.items():
        monkeypatch.setenv(variable, value)
    return slice_


@pytest.fixture
def instance(pipeline) -> dg.DagsterInstance:
    with dg.instance_for_test(temp_dir=str(pipeline.dagster_home)) as test_instance:
        yield test_instance


@pytest.fixture(scope="session")
def chaos_table(request) -> dict:
    """Fault scenario -> (trials, Count), printed by pytest_terminal_summary."""
    return request.config.stash.setdefault(CHAOS_TABLE, {})


def pytest_terminal_summary(terminalreporter, config):
    rows = config.stash.get(CHAOS_TABLE, {})
    if rows:
        terminalreporter.write_sep("-", "faults injected: what each left behind")
        terminalreporter.write_line(table(rows))
