"""Materialize (and cancel) through the Dagster webserver's GraphQL API, as the UI's buttons do."""

import json
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from logins_pipeline.cli.backdate import send_dated
from logins_pipeline.defs.logins.assets import ingest_logins
from logins_pipeline.drain.failpoints import VARIABLE as FAILPOINT
from logins_pipeline.drain.ingest import drain
from logins_pipeline.local.dagster_ui import dagster_ui
from logins_pipeline_tests.chaos import CHUNK, Count, Messages, count, recover, stored, wait_until
from logins_pipeline_tests.conftest import REPO, WEBSERVER_ONLY_DAGSTER_YAML, sample_events, sample_pii_values

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ASSETS = [key.to_user_string() for key in ingest_logins.keys]
ANALYTICS = ["daily_login_stats", "shared_devices", "shared_addresses", "new_device_logins", "app_version_adoption"]


def test_lineage_is_raw_to_masked_to_tables_to_analytics(webserver):
    assert webserver.lineage() == {
        "raw_login_messages": set(),
        "masked_logins": {"raw_login_messages"},
        "user_logins": {"masked_logins"},
        "login_quarantine": {"masked_logins"},
        "logins_retention": set(),  # the maintenance group's retention pass: no data dependency
        **{name: {"user_logins"} for name in ANALYTICS},
    }


def test_materialize_from_the_ui_drains_the_sample(pipeline, webserver, tmp_path):
    pipeline.seed([json.dumps(event) for event in sample_events()])
    run_id = webserver.launch("__ASSET_JOB", assets=ASSETS)
    assert webserver.wait_for_run(run_id, timeout=120) == "SUCCESS"
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(*) FROM login_quarantine") == 1
    needles = [value.encode() for value in sample_pii_values()]
    # Run/event storage and compute logs in DAGSTER_HOME, and the webserver's log (run workers' output).
    stored_files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert stored_files and not [str(p) for p in stored_files for n in needles if n in p.read_bytes()]


@pytest.fixture
def slow_commits(monkeypatch):
    """Each chunk waits 0.3 s after its COMMIT, in the run worker the webserver starts (it inherits this)."""
    monkeypatch.setenv(FAILPOINT, "after_commit:0.3")


def test_cancel_from_the_ui_finishes_the_chunk_in_flight_and_returns_the_rest(pipeline, slow_commits, webserver):
    messages = Messages.generate(20 * CHUNK)
    pipeline.seed(messages.bodies)
    config = {"ops": {"ingest_logins": {"config": {"chunk_size": CHUNK, "visibility_timeout": 60}}}}
    run_id = webserver.launch("__ASSET_JOB", assets=ASSETS, run_config=config)
    wait_until(lambda: stored(pipeline) >= CHUNK, "a chunk is stored")

    assert webserver.terminate(run_id) == "TerminateRunSuccess"
    assert webserver.wait_for_run(run_id, timeout=120) == "CANCELED"
    depth = pipeline.sqs.queue_depth()
    assert depth.in_flight == 0 and depth.visible > 0  # stopped receiving; what it held is back at once
    assert stored(pipeline) + depth.visible == len(messages.bodies)  # deleted exactly what it committed
    recover(pipeline, visibility=0)
    assert count(pipeline, messages) == Count()


@pytest.fixture
def webserver_and_daemon(pipeline, tmp_path):
    """The webserver and the daemon (which runs backfills) on this test's slice of the services."""
    (pipeline.dagster_home / "dagster.yaml").write_text(WEBSERVER_ONLY_DAGSTER_YAML)
    # Create the SQLite storage first: two processes creating it at once race in its schema migrations.
    dg.DagsterInstance.from_config(str(pipeline.dagster_home)).dispose()
    with dagster_ui(REPO / "workspace.yaml", dict(os.environ), daemon=True, log_dir=tmp_path) as ui:
        yield ui


def test_a_backfill_of_a_date_range_from_the_ui_fills_every_analytics_table(pipeline, webserver_and_daemon):
    now = datetime.now(UTC)
    days = [(now - timedelta(days=ago)).date().isoformat() for ago in (2, 1)]
    events = [{**sample_events()[i], "user_id": f"user-{i % 4}"} for i in range(8)]
    assert send_dated(pipeline.sqs, pipeline.key, [json.dumps(e) for e in events], [2, 1] * 4, now) == 0
    assert drain(pipeline.sqs, pipeline.postgres, pipeline.keys).inserted == 8

    backfill_id = webserver_and_daemon.backfill(ANALYTICS, days[0], days[-1])
    assert webserver_and_daemon.wait_for_backfill_runs(backfill_id, len(days)) == ["SUCCESS"] * len(days)  # a run a day
    for table in ANALYTICS[:1] + ANALYTICS[3:]:  # no address or device is shared by these few users
        assert pipeline.query(f"SELECT DISTINCT create_date::text FROM {table} ORDER BY 1") == [(d,) for d in days]
    assert pipeline.query("SELECT logins FROM daily_login_stats ORDER BY create_date") == [(4,), (4,)]
