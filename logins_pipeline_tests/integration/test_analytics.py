"""The daily analytics against the real local services: the figures of generated activity over three days
(dated through signed origins, as replayed messages are) against the generator's ground truth, idempotence,
the checks, and the automation that refreshes exactly the days a drain wrote."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from logins_pipeline import analytics, settings
from logins_pipeline.analytics import ADDRESS_MIN_USERS, DEVICE_MIN_USERS
from logins_pipeline.cli.backdate import send_dated
from logins_pipeline.cli.run import run_analytics_day, run_ingest_job
from logins_pipeline.core.generate import expected_figures, generate_activity

pytestmark = pytest.mark.integration

DAYS = 3
REPO = Path(__file__).parents[2]
README = (REPO / "README.md").read_text()


def example_queries() -> list[str]:
    """The statements of docs/analytics-examples.sql, as README shows them (indented by 4)."""
    lines = (REPO / "docs" / "analytics-examples.sql").read_text().splitlines()
    code = "\n".join(line for line in lines if not line.startswith("--"))
    return ["\n    ".join(s.strip().splitlines()) + ";" for s in code.split(";") if s.strip()]


TABLES = ["daily_login_stats", "shared_devices", "shared_addresses", "new_device_logins", "app_version_adoption"]


def send_activity(pipeline, logins, now: datetime) -> None:
    bodies = [json.dumps(login.event) for login in logins]
    assert send_dated(pipeline.sqs, pipeline.key, bodies, [login.days_ago for login in logins], now) == 0


def day_of(now: datetime, days_ago: int) -> date:
    return (now - timedelta(days=days_ago)).date()


def snapshot(pipeline) -> dict[str, list]:
    """Every row of every table, but daily_login_stats' computed_at."""
    return {
        table: pipeline.query(f"SELECT (to_jsonb(t) - 'computed_at')::text AS r FROM {table} t ORDER BY r")
        for table in TABLES
    }


def test_each_days_figures_match_the_generators_ground_truth_and_a_second_run_changes_nothing(pipeline, instance):
    now = datetime.now(UTC)
    logins = generate_activity(6_000, days=DAYS, seed=14)
    send_activity(pipeline, logins, now)
    outcome = run_ingest_job(instance=instance)
    assert outcome.success, outcome.error
    assert outcome.metadata["inserted"] == len(logins)

    # Not in date order, as a backfill's parallel runs may go: a refresh of an earlier day reports the later
    # days whose new-device logins it made stale, and those are refreshed again (as the automation does).
    stale, found = set(), {}
    for days_ago in (0, 2, 1):
        outcome = run_analytics_day(day_of(now, days_ago).isoformat(), instance=instance)
        assert outcome.success, outcome.error
        stale.update(outcome.metadata["new_device_logins"]["later_days_invalidated"])
        found[day_of(now, days_ago).isoformat()] = outcome.metadata
    assert stale == {day_of(now, 0).isoformat()}
    for day in stale:
        found[day] = run_analytics_day(day, instance=instance).metadata

    expected = expected_figures(logins, DEVICE_MIN_USERS, ADDRESS_MIN_USERS)
    for days_ago, truth in expected.items():
        figures = found[day_of(now, days_ago).isoformat()]
        assert (
            figures["daily_login_stats"]["logins"],
            figures["daily_login_stats"]["users"],
            figures["shared_devices"]["shared_devices"],
            figures["shared_addresses"]["shared_addresses"],
            figures["new_device_logins"]["new_device_logins"],
        ) == (truth.logins, truth.users, truth.shared_devices, truth.shared_addresses, truth.new_device_logins), (
            days_ago
        )
    assert sum(t.shared_devices for t in expected.values()) > 0  # the seed exercises every table
    assert sum(t.shared_addresses for t in expected.values()) > 0
    assert 0 < expected[0].new_device_logins < expected[0].logins
    checks = instance.get_records_for_run(outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    assert {r.event_log_entry.dagster_event.event_specific_data.passed for r in checks} == {True}
    assert len(checks) == len(TABLES)

    for query in example_queries():  # README's examples, as the analyst
        assert query in README
        with psycopg.connect(pipeline.env[settings.ANALYST_DSN], autocommit=True) as analyst:
            analyst.execute(query).fetchall()

    first = snapshot(pipeline)
    assert all(first[table] for table in TABLES)
    dump = "\n".join(row for rows in first.values() for (row,) in rows)
    assert not [v for v in {e[f] for e in (login.event for login in logins) for f in ("ip", "device_id")} if v in dump]
    assert run_analytics_day(day_of(now, 0).isoformat(), instance=instance).success  # idempotent per partition
    assert snapshot(pipeline) == first


# --- automation -------------------------------------------------------------------------------------------

EVENT = {
    "user_id": "u-late",
    "app_version": "2.1.0",
    "device_type": "ios",
    "ip": "198.51.100.7",
    "locale": "DE",
    "device_id": "123-45-6789",
}


class Ticks:
    """The analytics' automation conditions, evaluated tick after tick as the automation sensor does."""

    def __init__(self, instance):
        from logins_pipeline.definitions import defs

        self.defs, self.instance, self.cursor = defs, instance, None

    def tick(self) -> dict[str, set[str]]:
        from logins_pipeline.defs.logins.analytics import daily_analytics

        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.cursor,
            asset_selection=dg.AssetSelection.assets(daily_analytics),
        )
        self.cursor = result.cursor
        requested = {name: result.get_requested_partitions(dg.AssetKey(name)) for name in TABLES}
        return {name: {str(day) for day in days} for name, days in requested.items() if days}


def everywhere(*days: date) -> dict[str, set[str]]:
    return {table: {d.isoformat() for d in days} for table in TABLES}


def drain(pipeline, instance, dated: list[tuple[dict, int]], now: datetime):
    bodies = [json.dumps(event) for event, _ in dated]
    assert send_dated(pipeline.sqs, pipeline.key, bodies, [ago for _, ago in dated], now) == 0
    return run_ingest_job(instance=instance)


def test_a_drain_refreshes_every_day_it_wrote_including_a_late_one_within_one_tick(pipeline, instance):
    now = datetime.now(UTC)
    today, two_days_ago = day_of(now, 0), day_of(now, 2)
    ticks = Ticks(instance)
    assert ticks.tick() == {}  # the first tick only sets the cursor

    assert drain(pipeline, instance, [(EVENT, 0), ({**EVENT, "user_id": "u-other"}, 0)], now).success
    assert ticks.tick() == everywhere(today)
    # Another drain writes today between that request and the next tick: requested again, since the rows
    # came after the request (the refresh requested before may have read the day without them).
    assert drain(pipeline, instance, [({**EVENT, "user_id": "u-third"}, 0)], now).success
    assert ticks.tick() == everywhere(today)
    assert ticks.tick() == {}  # requested once
    assert run_analytics_day(today.isoformat(), instance=instance).success
    assert pipeline.scalar("SELECT count(*) FROM new_device_logins WHERE create_date = %s", (today,)) == 3

    # A login of two days ago arrives late: same user, same device. Its day is refreshed at the next tick;
    # that refresh finds the pair first seen today, so today's new_device_logins is refreshed at the one after.
    late = drain(pipeline, instance, [(EVENT, 2)], now)
    assert late.success and late.metadata["inserted"] == 1
    assert late.metadata["days_written"] == [two_days_ago.isoformat()]
    assert ticks.tick() == everywhere(two_days_ago)
    refreshed = run_analytics_day(two_days_ago.isoformat(), instance=instance)  # as the requested run does
    assert refreshed.metadata["new_device_logins"]["later_days_invalidated"] == [today.isoformat()]
    with pipeline.postgres.connect() as conn:  # until it is refreshed, today's check says it is stale
        assert analytics.offending_rows(conn, analytics.NEW_DEVICE_LOGINS, today) == 1
    assert ticks.tick() == {"new_device_logins": {today.isoformat()}}
    assert run_analytics_day(today.isoformat(), instance=instance).success
    assert pipeline.scalar("SELECT count(*) FROM new_device_logins WHERE create_date = %s", (today,)) == 2
    with pipeline.postgres.connect() as conn:
        assert analytics.offending_rows(conn, analytics.NEW_DEVICE_LOGINS, today) == 0
    assert ticks.tick() == {}

    # A drain that stores no row (a message that is quarantined) refreshes nothing.
    pipeline.seed(['{"foo": "oops_wrong_msg_type"}'])
    assert run_ingest_job(instance=instance).metadata["quarantined"] == 1
    assert ticks.tick() == {}


def test_nothing_is_refreshed_while_a_blocking_check_of_user_logins_fails(pipeline, instance):
    now = datetime.now(UTC)
    ticks = Ticks(instance)
    ticks.tick()
    pipeline.query("INSERT INTO user_logins (user_id, create_date) VALUES (NULL, current_date) RETURNING 1")
    outcome = drain(pipeline, instance, [(EVENT, 0)], now)
    assert ticks.tick() == {}
    assert not outcome.success
