"""The daily analytics against the real local services: the figures of generated activity over three days
(dated through signed origins, as replayed messages are) against the generator's ground truth, idempotence,
the checks, and the automation that refreshes exactly the days a drain wrote."""

import json
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from logins_pipeline.backdate import send_dated
from logins_pipeline.core.generate import expected_figures, generate_activity
from logins_pipeline.defs.logins.analytics import ADDRESS_MIN_USERS, DEVICE_MIN_USERS
from logins_pipeline.run import run_analytics_day, run_ingest_job

pytestmark = pytest.mark.integration

DAYS = 3
TABLES = ["daily_login_stats", "shared_devices", "shared_addresses", "new_device_logins", "app_version_adoption"]


def send_activity(pipeline, logins, now: datetime) -> None:
    bodies = [json.dumps(login.event) for login in logins]
    assert send_dated(pipeline.sqs, pipeline.key, bodies, [login.days_ago for login in logins], now) == 0


def day_of(now: datetime, days_ago: int) -> date:
    return (now - timedelta(days=days_ago)).date()


def snapshot(pipeline) -> dict[str, list]:
    return {table: pipeline.query(f"SELECT * FROM {table} ORDER BY 1, 2, 3") for table in TABLES}


@pytest.fixture
def activity(pipeline, instance):
    """6,000 generated logins over three days, drained; returns (logins, now)."""
    now = datetime.now(timezone.utc)
    logins = generate_activity(6_000, days=DAYS, seed=14)
    send_activity(pipeline, logins, now)
    outcome = run_ingest_job(instance=instance)
    assert outcome.success, outcome.error
    assert outcome.metadata["inserted"] == len(logins)
    return logins, now


def test_each_days_figures_match_the_generators_ground_truth(pipeline, instance, activity):
    logins, now = activity
    expected = expected_figures(logins, DEVICE_MIN_USERS, ADDRESS_MIN_USERS)
    for days_ago, truth in expected.items():
        outcome = run_analytics_day(day_of(now, days_ago).isoformat(), instance=instance)
        assert outcome.success, outcome.error
        figures = outcome.metadata
        found = (figures["daily_login_stats"]["logins"], figures["daily_login_stats"]["users"],
                 figures["shared_devices"]["shared_devices"], figures["shared_addresses"]["shared_addresses"],
                 figures["new_device_logins"]["new_device_logins"])
        assert found == (truth.logins, truth.users, truth.shared_devices, truth.shared_addresses,
                         truth.new_device_logins), days_ago
    assert sum(t.shared_devices for t in expected.values()) > 0  # the seed exercises every table
    assert sum(t.shared_addresses for t in expected.values()) > 0
    assert 0 < expected[0].new_device_logins < expected[0].logins
    checks = instance.get_records_for_run(outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    assert {r.event_log_entry.dagster_event.event_specific_data.passed for r in checks} == {True}
    assert len(checks) == len(TABLES)
