"""`logins-pipeline run` with LOGINS_LOG_FORMAT=json: its log (stderr) is JSON lines, its output stays text."""

import json

import pytest

from logins_pipeline import settings
from logins_pipeline_tests.conftest import SAMPLE_FILE, sample_pii_values
from logins_pipeline_tests.integration.test_cli import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_run_logs_json_lines(pipeline):
    # As every configured instance has it: without it, Dagster prints a plain-text telemetry notice.
    (pipeline.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert cli("seed", "--file", str(SAMPLE_FILE)).returncode == 0
    ran = cli("run", **{settings.LOG_FORMAT: "json"})
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split()[1].rstrip(":")  # "run <id>: 100 received, ..."

    records = [json.loads(line) for line in ran.stderr.splitlines() if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    drained = [r for r in records if r["message"].startswith("drained 100 messages")]
    assert len(drained) == 1
    fields = (drained[0]["run_id"], drained[0]["job"], drained[0]["step"])
    assert fields == (run_id, "ingest_logins_job", "ingest_logins")
    assert not [value for value in sample_pii_values() if value in ran.stderr + ran.stdout]
