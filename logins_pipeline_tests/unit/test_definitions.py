"""The code location loads (as dg loads it: every module under logins_pipeline/defs/) and has the shape the UI
shows."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from logins_pipeline import settings
from logins_pipeline.definitions import defs
from logins_pipeline.defs.resources import resources_from_env
from logins_pipeline.resources.vault import VaultResource

REPO = Path(__file__).parents[2]
ANALYTICS = {"daily_login_stats", "shared_devices", "shared_addresses", "new_device_logins", "app_version_adoption"}


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


def test_dg_check_defs():
    dg_cli = Path(sys.executable).parent / "dg"
    result = subprocess.run(
        [str(dg_cli), "check", "defs"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully." in result.stdout


def test_an_installed_copy_loads_without_the_projects_pyproject_toml(tmp_path):
    """As in the image (pip install, no source tree): the code location must not need [tool.dg] to load."""
    shutil.copytree(REPO / "logins_pipeline", tmp_path / "logins_pipeline")
    script = (
        "import logins_pipeline, logins_pipeline.definitions as d; "
        "print(logins_pipeline.__file__); print(sorted(j.name for j in d.defs.jobs))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    jobs = "['daily_analytics_job', 'erase_user_job', 'ingest_logins_job', 'retention_job']"
    assert result.stdout.splitlines() == [str(tmp_path / "logins_pipeline" / "__init__.py"), jobs]


def test_each_definition_is_found_once():
    """A module under defs/ that binds another module's job or sensor at its top level hands it to the loader a
    second time (an asset or spec there fails the load: a duplicate asset key)."""
    for kind in (defs.assets, defs.asset_checks, defs.jobs, defs.sensors):
        found = list(kind or [])
        assert len({id(definition) for definition in found}) == len(found)


def test_assets_checks_sensor_and_job_are_defined():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "raw_login_messages",
        "masked_logins",
        "user_logins",
        "login_quarantine",
        *ANALYTICS,
        "logins_retention",
    }
    assert {c.name for c in graph.asset_check_keys} == {
        "no_null_user_id",
        "masked_values_are_tokens",
        "message_ids_unique",
        "send_to_commit_p95",
        "logins_match_user_logins",
        "every_value_is_shared",
        "devices_not_seen_before",
        "shares_are_fractions_of_the_day",
    }
    assert defs.resolve_sensor_def("login_queue_sensor").job_name == "ingest_logins_job"
    assert defs.resolve_job_def("ingest_logins_job")


def test_failed_runs_alert_and_runs_log_through_the_projects_console_logger():
    from logins_pipeline.defs.logins.alerts import run_failure_alert
    from logins_pipeline.defs.logins.loggers import console_logger

    assert defs.resolve_sensor_def("run_failure_alert") is run_failure_alert
    assert run_failure_alert.default_status == dg.DefaultSensorStatus.RUNNING
    for job in (defs.resolve_job_def("ingest_logins_job"), defs.resolve_implicit_global_asset_job_def()):
        assert job.loggers["console"] is console_logger


def test_column_schema_is_shown_for_the_masked_rows_and_the_table():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for name in ("masked_logins", "user_logins"):
        schema = specs[name].metadata["dagster/column_schema"]
        assert "masked_ip" in {column.name for column in schema.columns}


def vault_resource() -> VaultResource:
    vault = resources_from_env()["vault"]
    assert isinstance(vault, VaultResource)
    return vault


def test_vault_is_off_unless_its_key_is_set_when_the_location_loads(monkeypatch):
    monkeypatch.delenv(settings.VAULT_KEY, raising=False)
    assert vault_resource().key is None
    monkeypatch.setenv(settings.VAULT_KEY, "anything")
    key = vault_resource().key
    assert isinstance(key, dg.EnvVar) and key.env_var_name == settings.VAULT_KEY  # read at run time, not shown


def test_user_logins_checks_block_and_the_analytics_wait_for_them():
    graph = defs.resolve_asset_graph()
    user_logins_checks = {key for key in graph.asset_check_keys if key.asset_key.to_user_string() == "user_logins"}
    assert {key.name: graph.get(key).blocking for key in user_logins_checks} == {
        "no_null_user_id": True,
        "masked_values_are_tokens": True,
        "message_ids_unique": True,
        "send_to_commit_p95": False,  # a warning about freshness: the analytics need not wait for it
    }
    for name in ANALYTICS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "logins" and node.parent_keys == {dg.AssetKey("user_logins")}
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition) and node.partitions_def.timezone == "UTC"
        assert node.automation_condition is not None
        labels = str(node.automation_condition.get_snapshot())
        assert "all_deps_blocking_checks_passed" in labels and "days_listed_by(user_logins.days_written" in labels


def test_the_analytics_automation_sensor_runs_by_default_without_a_cron():
    sensor = defs.resolve_sensor_def("analytics_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert [schedule.name for schedule in defs.schedules or []] == ["retention"]  # no cron for the analytics


def test_the_retention_schedule_runs_daily_by_default():
    schedule = defs.resolve_schedule_def("retention")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 0 * * *", "UTC")
    assert schedule.job_name == "retention_job"
