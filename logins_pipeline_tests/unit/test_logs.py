"""Structured logs: with LOGINS_LOG_FORMAT=json, a run's console log is one JSON object per line."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from logins_pipeline import settings
from logins_pipeline.defs.logins.loggers import console_logger


@dg.op
def fails_quoting_a_value(context: dg.OpExecutionContext):
    context.log.info("about to fail")
    raise ValueError("bad row from 203.0.113.9")


@dg.job(logger_defs={"console": console_logger})
def failing_job():
    fails_quoting_a_value()


def run_and_capture(capfd) -> list[str]:
    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}},
        )
    assert not result.success
    return [line for line in capfd.readouterr().err.splitlines() if line.strip()]


def test_json_format_writes_one_object_per_line_with_the_run_fields(monkeypatch, capfd):
    monkeypatch.setenv(settings.LOG_FORMAT, "json")
    records = [json.loads(line) for line in run_and_capture(capfd)]  # every line parses
    assert all({"time", "level", "logger", "message", "run_id", "job"} <= set(r) for r in records)
    info = next(r for r in records if r["message"] == "about to fail")
    assert info["level"] == "INFO" and info["step"] == "fails_quoting_a_value" and info["job"] == "failing_job"
    failure = next(r for r in records if r.get("event") == "STEP_FAILURE")
    assert failure["level"] == "ERROR"
    assert failure["error"] == "ValueError: bad row from <ip>"
    assert "203.0.113.9" not in json.dumps(records)


@pytest.mark.parametrize("value", ["", "text"])
def test_otherwise_dagsters_text_format(monkeypatch, capfd, value):
    monkeypatch.setenv(settings.LOG_FORMAT, value)
    lines = run_and_capture(capfd)
    assert any("about to fail" in line for line in lines)
    assert not any(line.startswith("{") for line in lines)


# A process that loads the code location as the code server and run workers do, then logs through the loggers
# Dagster makes itself: a sensor tick's logger and the default system logger of a log manager without run config.
DAGSTER_OWN_LOGGERS = """
import dagster as dg
import logins_pipeline.definitions
from dagster._core.execution.context_creation_job import initialize_console_manager
dg.build_sensor_context().log.info("a sensor tick's line")
initialize_console_manager(None).info("a system logger's line")
"""


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_dagsters_own_console_loggers_follow_the_format(log_format):
    environment = {"PATH": os.environ["PATH"], settings.LOG_FORMAT: log_format}
    process = subprocess.run(
        [sys.executable, "-c", DAGSTER_OWN_LOGGERS], env=environment, capture_output=True, text=True, check=True
    )
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    messages = ["a sensor tick's line", "a system logger's line"]
    if log_format == "json":
        assert [json.loads(line)["message"] for line in lines] == messages, process.stderr
    else:
        assert [line.split(" - ")[-1] for line in lines] == messages, process.stderr
