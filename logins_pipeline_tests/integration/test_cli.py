"""The `logins-pipeline` command as a user runs it: a real process, real services, real environment."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from logins_pipeline import settings
from logins_pipeline.local.services import free_port
from logins_pipeline_tests.conftest import SAMPLE_FILE, sample_pii_values

pytestmark = pytest.mark.integration

COMMAND = str(Path(sys.executable).parent / "logins-pipeline")


def cli(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow
def test_seed_run_status_on_the_sample(pipeline):
    seeded = cli("seed", "--file", str(SAMPLE_FILE))
    assert seeded.returncode == 0, seeded.stderr
    assert "sent 100 messages" in seeded.stdout

    ran = cli("run")
    assert ran.returncode == 0, ran.stderr
    assert "100 received, 99 inserted, 0 duplicates, 1 quarantined, 0 left in queue" in ran.stdout
    assert "quarantined missing_field: 1" in ran.stdout

    status = cli("status")
    assert "user_logins: 99 rows; login_quarantine: 1 rows" in status.stdout
    assert "dead-letter queue: 0" in status.stdout

    again = cli("run")  # an empty queue: nothing to do, nothing doubled
    assert "0 received, 0 inserted" in again.stdout
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99

    for output in (seeded, ran, status, again):
        text = output.stdout + output.stderr
        assert not [value for value in sample_pii_values() if value in text]


def test_seed_count_generates_realistic_logins(pipeline):
    result = cli("seed", "--count", "250")
    assert result.returncode == 0, result.stderr
    assert pipeline.sqs.queue_depth().visible == 250


def test_seed_days_dates_the_messages_and_analytics_prints_each_days_figures(pipeline):
    seeded = cli("seed", "--count", "300", "--days", "3", "--seed", "4")
    assert seeded.returncode == 0, seeded.stderr
    expected = [line for line in seeded.stdout.splitlines() if line.startswith("  20")]
    assert len(expected) == 3  # one line per day: what the analytics must find
    assert cli("run").returncode == 0
    shown = cli("analytics")
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.strip().splitlines()[1:]
    assert [row.split()[0] for row in rows] == [line.split(":")[0].strip() for line in expected]
    for row, line in zip(rows, expected, strict=True):
        logins = line.split(": ", 1)[1].split(" logins")[0]
        assert row.split()[1] == logins


def test_postgres_unreachable_is_one_clear_line(pipeline):
    result = cli("status", **{settings.POSTGRES_DSN: f"postgresql://postgres:x@127.0.0.1:{free_port()}/logins"})
    assert_one_line_error(result, "error: Postgres:")


def test_sqs_unreachable_is_one_clear_line(pipeline):
    result = cli("status", **{settings.AWS_ENDPOINT_URL_SQS: f"http://127.0.0.1:{free_port()}"})
    assert_one_line_error(result, "error: SQS:")


@pytest.mark.slow
def test_wrong_queue_is_one_clear_line(pipeline):
    wrong = pipeline.sqs.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    result = cli("status", **{settings.QUEUE_URL: wrong})
    assert_one_line_error(result, "error: SQS:", "NonExistentQueue")


def test_missing_setting_is_one_clear_line(pipeline):
    env = {k: v for k, v in os.environ.items() if k != settings.QUEUE_URL}
    result = subprocess.run([COMMAND, "status"], capture_output=True, text=True, env=env, check=False)
    assert_one_line_error(result, settings.QUEUE_URL)


def test_development_key_outside_development_refuses_to_run(pipeline):
    pipeline.seed(['{"n": 1}'])
    result = cli("run", **{settings.ENVIRONMENT: "production"})
    assert_one_line_error(result, "development key")
    assert pipeline.sqs.queue_depth().visible == 1


def test_env_before_up_says_what_to_do(tmp_path):
    result = cli("env", LOGINS_LOCAL_DIR=str(tmp_path))
    assert_one_line_error(result, "logins-pipeline up")


@pytest.mark.slow
def test_no_sample_pii_on_disk_after_a_run(pipeline):
    """Postgres's data directory (heap and WAL) and DAGSTER_HOME hold no plaintext ip or device_id."""
    assert cli("seed").returncode == 0
    assert cli("run").returncode == 0
    with psycopg.connect(pipeline.env[settings.POSTGRES_ADMIN_DSN], autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    needles = [value.encode() for value in sample_pii_values()]
    for root in (pipeline.postgres_data_dir, pipeline.dagster_home):
        contents = [(str(p), data) for p in root.rglob("*") if (data := read_if_present(p)) is not None]
        assert contents
        leaks = [(path, n) for path, data in contents for n in needles if n in data]
        assert not leaks


def read_if_present(path) -> bytes | None:
    """A file's bytes, or None for a directory or a file the live server removed meanwhile (its caches)."""
    try:
        return path.read_bytes() if path.is_file() else None
    except FileNotFoundError:
        return None
