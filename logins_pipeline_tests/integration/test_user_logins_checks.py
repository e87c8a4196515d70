"""The blocking checks on user_logins read the days its materialization wrote, and only their partitions:
their cost does not grow with the days kept. A message stored twice within those days, or a raw value in
them, fails its check; a bad row of a day the run did not write is not read."""

import json
from datetime import timedelta

import dagster as dg
import pytest

from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.defs.logins.checks import TABLE_CHECKS, offending_rows
from logins_pipeline_tests.integration.test_partitions import TODAY, logins, relations, store

pytestmark = pytest.mark.integration

DAYS = [TODAY + timedelta(days=n) for n in (1, 2, 3)]  # each has its partition, made ahead
COLUMNS = "message_id, user_id, device_type, masked_ip, masked_device_id, locale, app_version, sent_at, masking_key_id"


def copy_to(pipeline, source: str, day, **changes: str) -> None:
    """A second row of message `source` on `day` (the owner's insert, past the drain), with `changes`."""
    values = ", ".join(f"%({name})s" if name in changes else name for name in COLUMNS.split(", "))
    with pipeline.postgres.connect() as conn:
        conn.execute(
            f"INSERT INTO user_logins ({COLUMNS}, create_date) SELECT {values}, %(day)s FROM user_logins"
            " WHERE message_id = %(id)s LIMIT 1",
            {"id": source, "day": day, **changes},
        )


def first_message(pipeline, day) -> str:
    return pipeline.scalar("SELECT min(message_id) FROM user_logins WHERE create_date = %s", (day,))


def test_each_check_reads_only_the_partitions_of_its_days(pipeline):
    store(pipeline, logins(DAYS, per_day=5), vault=False)
    for name, (_, sql) in TABLE_CHECKS.items():
        plan = pipeline.scalar("EXPLAIN (FORMAT JSON) " + sql, {"days": DAYS[1:]})
        read = {relation for relation in relations(plan) if relation.startswith("user_logins")}
        assert read == {f"user_logins_{day:%Y%m%d}" for day in DAYS[1:]}, name


def test_a_message_stored_on_two_of_the_days_checked_fails_and_other_days_are_not_read(pipeline):
    store(pipeline, logins(DAYS, per_day=5), vault=False)
    copy_to(pipeline, first_message(pipeline, DAYS[0]), DAYS[1])
    with pipeline.postgres.connect() as conn:
        assert offending_rows(conn, DAYS[:2])["message_ids_unique"] == 1
        assert offending_rows(conn, DAYS) == {
            "no_null_user_id": 0,
            "masked_values_are_tokens": 0,
            "message_ids_unique": 1,
        }
        assert offending_rows(conn, DAYS[1:])["message_ids_unique"] == 0  # the first copy's day is not read
        assert set(offending_rows(conn, []).values()) == {0}


def check_results(instance, run_id: str) -> dict[str, tuple[bool, dict]]:
    evaluations = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return {
        data.check_name: (data.passed, {k: v.value for k, v in data.metadata.items()})
        for data in (e.dagster_event.event_specific_data for e in evaluations)
    }


def test_a_run_checks_the_days_it_wrote(pipeline, instance):
    """A run writes today: a raw value stored today fails the run's check; one on another day is not read."""
    yesterday = TODAY - timedelta(days=1)
    store(pipeline, logins([yesterday, TODAY], per_day=2), vault=False)
    copy_to(pipeline, first_message(pipeline, yesterday), yesterday, message_id="raw-yesterday", masked_ip="10.0.0.1")
    with pipeline.postgres.connect() as conn:  # stored an hour ago: not among the days the run writes
        conn.execute("UPDATE user_logins SET ingested_at = now() - interval '1 hour'")
    pipeline.seed(
        [json.dumps({"user_id": "u", "app_version": "1", "device_type": "ios", "ip": "10.1.1.1", "device_id": "d"})]
    )

    clean = check_results(instance, run_ingest_job(instance=instance).run_id)

    copy_to(pipeline, first_message(pipeline, TODAY), TODAY, message_id="raw-today", masked_ip="10.0.0.2")
    pipeline.seed(
        [json.dumps({"user_id": "v", "app_version": "1", "device_type": "ios", "ip": "10.1.1.2", "device_id": "e"})]
    )
    dirty = check_results(instance, run_ingest_job(instance=instance).run_id)

    assert {name: passed for name, (passed, _) in clean.items() if name in TABLE_CHECKS} == dict.fromkeys(
        TABLE_CHECKS, True
    )
    assert clean["masked_values_are_tokens"][1] == {"offending_rows": 0, "days_checked": 1}
    assert dirty["masked_values_are_tokens"] == (False, {"offending_rows": 1, "days_checked": 1})
