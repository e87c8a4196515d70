"""Materialize through the Dagster webserver's GraphQL API, as the UI's Materialize button does."""

import json

import pytest

from logins_pipeline.defs.logins.assets import ingest_logins
from logins_pipeline_tests.conftest import sample_events, sample_pii_values

pytestmark = pytest.mark.integration


def test_lineage_is_raw_to_masked_to_tables(webserver):
    assert webserver.lineage() == {
        "raw_login_messages": set(),
        "masked_logins": {"raw_login_messages"},
        "user_logins": {"masked_logins"},
        "login_quarantine": {"masked_logins"},
    }


def test_materialize_from_the_ui_drains_the_sample(pipeline, webserver, tmp_path):
    pipeline.seed([json.dumps(event) for event in sample_events()])
    run_id = webserver.launch("__ASSET_JOB", assets=[key.to_user_string() for key in ingest_logins.keys])
    assert webserver.wait_for_run(run_id, timeout=120) == "SUCCESS"
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(*) FROM login_quarantine") == 1
    needles = [value.encode() for value in sample_pii_values()]
    # Run/event storage and compute logs in DAGSTER_HOME, and the webserver's log (run workers' output).
    stored = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert stored and not [str(p) for p in stored for n in needles if n in p.read_bytes()]
