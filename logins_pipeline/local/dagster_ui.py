"""The Dagster webserver, and optionally the daemon, as child processes on 127.0.0.1 against a given
environment (for `make screenshot` and the tests), and the GraphQL calls behind the UI's buttons."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

from logins_pipeline.local.services import free_port

BIN = Path(sys.executable).parent
LOCATION = "logins_pipeline"
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
STOP_GRACE_S = 30

LINEAGE = "{ assetNodes { assetKey { path } dependencyKeys { path } } }"
TERMINATE = """
mutation Terminate($id: String!) {
  terminateRun(runId: $id) { __typename ... on PythonError { message } ... on TerminateRunFailure { message } }
}
"""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
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
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""
BACKFILL_RUNS = """
query B($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { runs { status } } } }
"""
SENSOR_STATE = """
query Sensor($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { ... on Sensor { sensorState { id } } }
}
"""
STOP_SENSOR = "mutation Stop($id: String!) { stopSensor(id: $id) { __typename } }"
NUX_SEEN = "mutation { setNuxSeen }"  # the "Join the Dagster community" dialog, once per instance


class DagsterUI:
    """A running webserver, through its GraphQL API."""

    def __init__(self, url: str):
        self.url = url

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
        if "errors" in body:
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def lineage(self) -> dict[str, set[str]]:
        """Asset name -> names of the assets it depends on."""
        return {
            "/".join(node["assetKey"]["path"]): {"/".join(dep["path"]) for dep in node["dependencyKeys"]}
            for node in self.graphql(LINEAGE)["assetNodes"]
        }

    def launch(self, job: str, assets: list[str] | None = None, run_config: dict | None = None) -> str:
        """Launch a run of `job` (`__ASSET_JOB` with `assets`: what "Materialize" does); returns its id."""
        selector: dict[str, object] = {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "pipelineName": job,
        }
        if assets:
            selector["assetSelection"] = [{"path": [name]} for name in assets]
        params = {
            "selector": selector,
            "mode": "default",
            "executionMetadata": {"tags": []},
            "runConfigData": run_config or {},
        }
        launched = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"launch failed: {launched}")
        return launched["run"]["runId"]

    def backfill(self, assets: list[str], first: str, last: str) -> str:
        """Launch a backfill of the partitions first..last of `assets` (what the UI's "Materialize" dialog
        does for a date range); returns its id. The daemon runs it."""
        params = {
            "partitionsByAssets": [
                {"assetKey": {"path": [name]}, "partitions": {"range": {"start": first, "end": last}}}
                for name in assets
            ]
        }
        launched = self.graphql(BACKFILL, {"params": params})["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(f"backfill failed: {launched}")
        return launched["backfillId"]

    def wait_for_backfill_runs(self, backfill_id: str, runs: int, timeout: float = 180) -> list[str]:
        """The statuses of the backfill's runs once `runs` of them have finished (or as they are when `timeout`
        runs out). Its own status turns COMPLETED only at the daemon's next backfill iteration, 30 s later."""
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.graphql(BACKFILL_RUNS, {"id": backfill_id})["partitionBackfillOrError"]
            statuses = [run["status"] for run in backfill["runs"]]
            finished = len(statuses) >= runs and all(status in FINISHED for status in statuses)
            if finished or time.monotonic() > deadline:
                return statuses
            time.sleep(1)

    def terminate(self, run_id: str) -> str:
        """What the UI's Terminate button does; returns the result's type name."""
        return self.graphql(TERMINATE, {"id": run_id})["terminateRun"]["__typename"]

    def run_status(self, run_id: str) -> str:
        return self.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]

    def wait_for_run(self, run_id: str, timeout: float = 180) -> str:
        """The run's status once it has finished (or whatever it is when `timeout` runs out)."""
        deadline = time.monotonic() + timeout
        status = self.run_status(run_id)
        while status not in FINISHED and time.monotonic() < deadline:
            time.sleep(1)
            status = self.run_status(run_id)
        return status

    def stop_sensor(self, name: str) -> None:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "sensorName": name}
        state_id = self.graphql(SENSOR_STATE, {"selector": selector})["sensorOrError"]["sensorState"]["id"]
        self.graphql(STOP_SENSOR, {"id": state_id})

    def dismiss_onboarding(self) -> None:
        self.graphql(NUX_SEEN)

    def wait_ready(self, processes: list[subprocess.Popen], timeout: float = 120) -> None:
        """Wait until the code location has loaded (its assets are listed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a Dagster process exited: {[p.args for p in processes]}")
            try:
                if self.graphql(LINEAGE)["assetNodes"]:
                    return
            except (OSError, RuntimeError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the Dagster webserver at {self.url} did not load the code location in {timeout}s")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL whatever is left after a grace period."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _start(command: list[str], env: dict, log: Path | None) -> subprocess.Popen:
    with open(log, "ab") if log else nullcontext(subprocess.DEVNULL) as output:
        return subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


@contextmanager
def dagster_ui(workspace: Path, env: dict, daemon: bool = False, log_dir: Path | None = None) -> Iterator[DagsterUI]:
    """dagster-webserver (and dagster-daemon) on a free loopback port, with exactly `env`; yields once the
    code location has loaded, and stops both afterwards."""
    port = free_port()
    commands = {"webserver": [str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]}
    if daemon:
        commands["daemon"] = [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]
    with ExitStack() as stack:
        processes = []
        for name, command in commands.items():
            process = _start(command, env, log_dir / f"{name}.log" if log_dir else None)
            stack.callback(_stop, process)
            processes.append(process)
        ui = DagsterUI(f"http://127.0.0.1:{port}")
        ui.wait_ready(processes)
        yield ui
