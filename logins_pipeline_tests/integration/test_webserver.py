"""Materialize through the Dagster webserver's GraphQL API, as the UI's Materialize button does."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from logins_pipeline.failpoints import VARIABLE as FAILPOINT
from logins_pipeline.local.services import free_port
from logins_pipeline_tests.chaos import CHUNK, Count, Messages, count, recover, stored, wait_until
from logins_pipeline_tests.conftest import sample_events, sample_pii_values

pytestmark = pytest.mark.integration

REPO = Path(__file__).parents[2]
ASSETS = ["raw_login_messages", "masked_logins", "user_logins", "login_quarantine"]
# The webserver alone (no daemon) launches runs directly with the default coordinator.
DAGSTER_YAML = """
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
TERMINATE = """
mutation Terminate($id: String!) {
  terminateRun(runId: $id) { __typename ... on PythonError { message } ... on TerminateRunFailure { message } }
}
"""
LINEAGE = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"


class Webserver:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:  # GraphQL errors come back as HTTP 500 with a body
            body = json.load(error)
        assert "errors" not in body, body
        return body["data"]

    def wait_ready(self, process: subprocess.Popen, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, "dagster-webserver exited"
            try:
                nodes = self.graphql(LINEAGE)["assetNodes"]
                if len(nodes) >= len(ASSETS):
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError("dagster-webserver did not load the code location")


@pytest.fixture
def webserver(pipeline):
    (pipeline.dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=REPO, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Webserver(port)
    try:
        server.wait_ready(process)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_lineage_is_raw_to_masked_to_tables(webserver):
    deps = {
        "/".join(n["assetKey"]["path"]): {"/".join(d["path"]) for d in n["dependencyKeys"]}
        for n in webserver.graphql(LINEAGE)["assetNodes"]
    }
    assert deps == {
        "raw_login_messages": set(),
        "masked_logins": {"raw_login_messages"},
        "user_logins": {"masked_logins"},
        "login_quarantine": {"masked_logins"},
    }


def launch(webserver: Webserver, run_config: dict | None = None) -> str:
    """Materialize the four assets, as the UI's button does; returns the run id."""
    params = {
        "selector": {
            "repositoryLocationName": "logins_pipeline",
            "repositoryName": "__repository__",
            "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": [key]} for key in ASSETS],
        },
        "mode": "default",
        "executionMetadata": {"tags": []},
        "runConfigData": run_config or {},
    }
    launched = webserver.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def final_status(webserver: Webserver, run_id: str) -> str:
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline and status not in ("SUCCESS", "FAILURE", "CANCELED"):
        time.sleep(1)
        status = webserver.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
    return status


def test_materialize_from_the_ui_drains_the_sample(pipeline, webserver):
    pipeline.seed([json.dumps(event) for event in sample_events()])
    assert final_status(webserver, launch(webserver)) == "SUCCESS"
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(*) FROM login_quarantine") == 1
    needles = [value.encode() for value in sample_pii_values()]
    stored = [p for p in pipeline.dagster_home.rglob("*") if p.is_file()]  # run/event storage, compute logs
    assert stored and not [str(p) for p in stored for n in needles if n in p.read_bytes()]


@pytest.fixture
def slow_commits(monkeypatch):
    """Each chunk waits 0.3 s after its COMMIT, in the run worker the webserver starts (it inherits this)."""
    monkeypatch.setenv(FAILPOINT, "after_commit:0.3")


def test_cancel_from_the_ui_finishes_the_chunk_in_flight_and_returns_the_rest(pipeline, slow_commits, webserver):
    messages = Messages.generate(20 * CHUNK)
    pipeline.seed(messages.bodies)
    run_id = launch(webserver, {"ops": {"ingest_logins": {"config": {"chunk_size": CHUNK, "visibility_timeout": 60}}}})
    wait_until(lambda: stored(pipeline) >= CHUNK, "a chunk is stored")

    terminated = webserver.graphql(TERMINATE, {"id": run_id})["terminateRun"]

    assert terminated["__typename"] == "TerminateRunSuccess", terminated
    assert final_status(webserver, run_id) == "CANCELED"
    depth = pipeline.sqs.queue_depth()
    assert depth.in_flight == 0 and depth.visible > 0  # stopped receiving; what it held is back at once
    assert stored(pipeline) + depth.visible == len(messages.bodies)  # deleted exactly what it committed
    recover(pipeline, visibility=0)
    assert count(pipeline, messages) == Count()
