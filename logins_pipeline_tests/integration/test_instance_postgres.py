"""The Dagster instance as `make dev` and Compose run it: the shipped dagster.yaml (Postgres storage through
dagster-postgres, QueuedRunCoordinator, the ingest pool), a webserver and a daemon. Two runs launched at
once both succeed, went through the run queue, and are recorded in the instance's own database."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import dagster as dg
import psycopg
import pytest

from logins_pipeline.defs.logins.assets import user_logins
from logins_pipeline.local.dagster_ui import dagster_ui
from logins_pipeline_tests.conftest import REPO, sample_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FRESHNESS = """
query Freshness($key: AssetKeyInput!) { assetNodes(assetKeys: [$key]) { freshnessStatusInfo { freshnessStatus } } }
"""


QUEUE_EVENTS = (dg.DagsterEventType.RUN_ENQUEUED.value, dg.DagsterEventType.RUN_STARTING.value)


def freshness(ui) -> str:
    nodes = ui.graphql(FRESHNESS, {"key": {"path": user_logins.key.path}})["assetNodes"]
    return nodes[0]["freshnessStatusInfo"]["freshnessStatus"]


def wait_for_freshness(ui, wanted: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while (status := freshness(ui)) != wanted and time.monotonic() < deadline:
        time.sleep(1)
    return status


def test_two_runs_launched_at_once_both_succeed_and_are_recorded_in_postgres(
    pipeline, instance_dsn, tmp_path, monkeypatch
):
    monkeypatch.setenv("FRESHNESS_DAEMON_INTERVAL_SECONDS", "5")
    with dagster_ui(REPO / "workspace.yaml", dict(os.environ), daemon=True, log_dir=tmp_path) as ui:
        ui.stop_sensor("login_queue_sensor")  # only the two runs below drain the queue
        pipeline.seed([json.dumps(event) for event in sample_events()])
        with ThreadPoolExecutor(max_workers=2) as pool:
            run_ids = list(pool.map(lambda _: ui.launch("ingest_logins_job"), range(2)))
        assert [ui.wait_for_run(run_id, timeout=300) for run_id in run_ids] == ["SUCCESS", "SUCCESS"]
        # The daemon's FreshnessDaemon has seen the new materialization of user_logins.
        assert wait_for_freshness(ui, "HEALTHY") == "HEALTHY"

    with psycopg.connect(instance_dsn) as conn:
        runs: dict[str, str] = dict(
            conn.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (run_ids,)).fetchall()
        )
        queue_events = conn.execute(
            "SELECT run_id, dagster_event_type FROM event_logs WHERE run_id = ANY(%s) AND dagster_event_type = ANY(%s)",
            (run_ids, list(QUEUE_EVENTS)),
        ).fetchall()
    assert runs == dict.fromkeys(run_ids, "SUCCESS")
    # Queued by the webserver, then launched by the daemon: the QueuedRunCoordinator's path.
    assert sorted(queue_events) == sorted((run_id, event) for run_id in run_ids for event in QUEUE_EVENTS)

    # Together the two runs received each message once: all of them stored, none twice.
    with dg.DagsterInstance.from_config(str(pipeline.dagster_home)) as instance:
        received = [
            cast(int, record.asset_materialization.metadata["received"].value)
            for record in instance.fetch_materializations(user_logins.key, limit=10).records
            if record.run_id in run_ids  # a sensor tick in flight when it was stopped may add a run
            and record.asset_materialization is not None
        ]
    assert len(received) == 2 and sum(received) == 100
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(*) FROM login_quarantine") == 1
