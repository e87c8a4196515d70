"""The pipeline against the real local services: sample outcome, redelivery, failure before COMMIT."""

import json
import threading
import time

import dagster as dg
import psycopg
import pytest

from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.transform import build_batch
from logins_pipeline.drain.ingest import DrainLimits, drain
from logins_pipeline.resources.postgres import apply_migrations, migrations, write_batch
from logins_pipeline.resources.sqs import SQSResource
from logins_pipeline_tests.conftest import as_messages, sample_events

pytestmark = pytest.mark.integration

SHORT_VISIBILITY = 2


def sample_bodies() -> list[str]:
    return [json.dumps(event) for event in sample_events()]


def short_visibility(pipeline) -> SQSResource:
    return SQSResource(
        queue_url=pipeline.sqs.queue_url, region_name=pipeline.sqs.region_name, visibility_timeout=SHORT_VISIBILITY
    )


def assert_sample_stored_once(pipeline):
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(DISTINCT message_id) FROM user_logins") == 99
    assert pipeline.query("SELECT reason FROM login_quarantine") == [("missing_field",)]
    assert pipeline.sqs.queue_depth().total == 0


def test_sample_ends_as_99_rows_and_1_quarantined(pipeline, instance):
    pipeline.seed(sample_bodies())

    outcome = run_ingest_job(instance=instance)

    assert outcome.success, outcome.error
    assert outcome.metadata["received"] == 100
    assert outcome.metadata["inserted"] == 99
    assert outcome.metadata["quarantined"] == 1
    assert outcome.metadata["duplicates_skipped"] == 0
    assert outcome.reasons == {"missing_field": 1}
    assert_sample_stored_once(pipeline)
    assert pipeline.scalar("SELECT count(*) FROM user_logins WHERE locale IS NULL") == 29  # null is data
    evaluations = instance.all_logs(outcome.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    passed = {
        e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed for e in evaluations
    }
    assert passed == {
        "no_null_user_id": True,
        "masked_values_are_tokens": True,
        "message_ids_unique": True,
        "send_to_commit_p95": True,
    }
    p50, p95, most = (outcome.metadata[f"send_to_commit_{name}_seconds"] for name in ("p50", "p95", "max"))
    assert 0 < p50 <= p95 <= most


def test_create_date_is_the_sent_timestamp_in_utc(pipeline):
    pipeline.seed(sample_bodies()[:5])
    drain(pipeline.sqs, pipeline.postgres, pipeline.keys)
    rows = pipeline.query(
        "SELECT count(*) FROM user_logins WHERE create_date = (sent_at AT TIME ZONE 'UTC')::date"
        " AND sent_at > now() - interval '5 minutes'"
    )
    assert rows == [(5,)]


def test_committed_but_not_deleted_then_redelivered_gives_no_duplicate(pipeline):
    pipeline.seed(sample_bodies())
    sqs = short_visibility(pipeline)
    messages: list[ReceivedMessage] = []
    while chunk := sqs.receive_chunk(100 - len(messages), receivers=2).messages:
        messages += chunk
    assert len({m.message_id for m in messages}) == 100
    with pipeline.postgres.connect() as conn:
        write_batch(conn, build_batch(messages, pipeline.keys))  # committed; the crash skips the delete
    time.sleep(SHORT_VISIBILITY + 1)

    summary = drain(pipeline.sqs, pipeline.postgres, pipeline.keys)

    assert (summary.received, summary.inserted, summary.quarantined, summary.duplicates) == (100, 0, 0, 100)
    assert_sample_stored_once(pipeline)


def test_a_chunk_of_old_and_new_messages_stores_only_the_new(pipeline):
    """The straight COPY into user_logins fails on the old ones and is undone; the staging path stores the
    rest, in the same transaction, with the quarantine rows."""
    messages = as_messages(sample_bodies())
    with pipeline.postgres.connect() as conn:
        first = write_batch(conn, build_batch(messages[:60], pipeline.keys))
        again = write_batch(conn, build_batch(messages[40:], pipeline.keys))
    assert (first.inserted + first.quarantined, first.duplicates) == (60, 0)
    assert (again.inserted + again.quarantined, again.duplicates) == (40, 20)
    assert_sample_stored_once(pipeline)


# Every transaction fails (a statement trigger fires even for an INSERT of no rows): not a poison message
# but a broken table, so the isolation gives up and the run fails.
INJECT_FAILURE = """
CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'injected failure before COMMIT'; END $$;
CREATE TRIGGER fail_insert BEFORE INSERT ON user_logins FOR EACH STATEMENT EXECUTE FUNCTION fail_insert();
"""


def test_failure_before_commit_leaves_every_message_in_the_queue(pipeline):
    pipeline.seed(sample_bodies())
    with pipeline.postgres.connect() as conn:
        conn.execute(INJECT_FAILURE)

    with pytest.raises(psycopg.errors.RaiseException, match="injected failure"):
        drain(short_visibility(pipeline), pipeline.postgres, pipeline.keys)

    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 0  # the valid rows rolled back too
    time.sleep(SHORT_VISIBILITY + 1)
    assert pipeline.sqs.queue_depth().visible == 100
    with pipeline.postgres.connect() as conn:
        conn.execute("DROP TRIGGER fail_insert ON user_logins")
    drain(pipeline.sqs, pipeline.postgres, pipeline.keys)
    assert_sample_stored_once(pipeline)


def test_failed_run_reports_a_clear_error_and_deletes_nothing(pipeline, instance):
    pipeline.seed(sample_bodies())
    with pipeline.postgres.connect() as conn:
        conn.execute(INJECT_FAILURE)

    outcome = run_ingest_job(instance=instance)

    assert not outcome.success
    assert "injected failure before COMMIT" in outcome.error
    assert pipeline.sqs.queue_depth().total == 100


def test_chunks_commit_then_delete_within_a_bounded_run(pipeline):
    pipeline.seed(sample_bodies())
    summary = drain(pipeline.sqs, pipeline.postgres, pipeline.keys, DrainLimits(max_messages=60, chunk_size=25))
    assert summary.received == 60
    assert summary.chunks == 3
    assert pipeline.sqs.queue_depth().total == 40
    drain(pipeline.sqs, pipeline.postgres, pipeline.keys)
    assert_sample_stored_once(pipeline)


SEVEN_COLUMN_TABLE = """
CREATE TABLE user_logins_old (
    user_id varchar(128), device_type varchar(32), masked_ip varchar(256), masked_device_id varchar(256),
    locale varchar(32), app_version integer, create_date date);
INSERT INTO user_logins_old VALUES ('u1', 'ios', 'x', 'y', NULL, 2, '2024-01-01');
"""


def test_migrations_are_idempotent_and_adopt_an_existing_seven_column_table(pipeline):
    with pipeline.postgres.connect() as conn:
        conn.execute("DROP TABLE user_logins CASCADE; DELETE FROM logins_schema_migrations")
        conn.execute(SEVEN_COLUMN_TABLE + "ALTER TABLE user_logins_old RENAME TO user_logins")
        assert apply_migrations(conn) == [version for version, _ in migrations()]
        assert apply_migrations(conn) == []
    pipeline.seed(sample_bodies())
    drain(pipeline.sqs, pipeline.postgres, pipeline.keys)
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 100
    assert pipeline.scalar("SELECT app_version_text(app_version) FROM user_logins WHERE user_id = 'u1'") == "0.0.2"


def test_a_development_key_outside_development_stops_the_run_at_resource_start(pipeline, instance, monkeypatch):
    pipeline.seed(sample_bodies()[:3])
    monkeypatch.setenv("LOGINS_ENVIRONMENT", "production")

    outcome = run_ingest_job(instance=instance)

    assert not outcome.success
    assert outcome.error.endswith(
        "KeyConfigError: LOGINS_MASKING_KEY is a development key; refusing it outside LOGINS_ENVIRONMENT=development"
    )
    assert pipeline.sqs.queue_depth().visible == 3


def test_a_run_waits_out_its_idle_time_for_logins_that_come_late(pipeline):
    """A run on a dry queue ends only once it has been idle for idle_seconds: logins sent meanwhile are
    its, not the next run's (a live stream keeps its run)."""
    drained: list = []
    running = threading.Thread(
        target=lambda: drained.append(
            drain(pipeline.sqs, pipeline.postgres, pipeline.keys, DrainLimits(idle_seconds=8))
        )
    )
    running.start()
    time.sleep(3)  # the run has found the queue dry (two empty 1 s long polls and the count)
    assert running.is_alive()
    pipeline.seed(sample_bodies())
    running.join()
    assert drained[0].received == 100
    assert_sample_stored_once(pipeline)


def test_a_run_ends_at_its_time_bound_however_long_its_idle_time(pipeline):
    started = time.monotonic()
    summary = drain(pipeline.sqs, pipeline.postgres, pipeline.keys, DrainLimits(idle_seconds=90, max_seconds=3))
    assert summary.received == 0
    assert time.monotonic() - started < 60  # the bound, and the receive in flight at it (2 long polls, a count)
