"""Retention (migration 0008, logins_pipeline/retention.py) as the logins_retention login: exactly the days
past each cutoff go (rows, vault, row-level analytics, quarantine), and the erasure suppressions past their
keep_until (migration 0010); a second pass and a pass after an interrupted one find nothing more, and
`reveal` of a login whose originals went says when."""

from datetime import timedelta

import psycopg
import pytest

from logins_pipeline import settings
from logins_pipeline.privacy.reveal import NotInVault, RemovedByRetention, reveal
from logins_pipeline.retention import RetentionPolicy, run_retention
from logins_pipeline_tests.integration.test_partitions import FAR_PAST, TODAY, logins, store

pytestmark = pytest.mark.integration

POLICY = RetentionPolicy(rows=30, vault=7, quarantine=14)  # first kept days: today-29, today-6, today-13
AGES = (40, 35, 30, 29, 10, 6, 5, 1, 0)  # days before today with logins, 3 each
PER_DAY = 3


def ago(days: int):
    return TODAY - timedelta(days=days)


def stored_days(pipeline, table: str) -> dict:
    return dict(pipeline.query(f"SELECT create_date, count(*) FROM {table} GROUP BY 1 ORDER BY 1"))


def connect(pipeline, variable: str) -> psycopg.Connection:
    return psycopg.connect(pipeline.env[variable], autocommit=True)


@pytest.fixture
def history(pipeline):
    """Logins (with their originals) on the days of AGES and on a far past day (in the default partition),
    new-device rows, first-seen pairs and quarantined messages of the same ages. Each of those days has its
    partitions, made ahead when it was to come."""
    pipeline.query("SELECT logins_create_day(day) FROM unnest(%s::date[]) AS day", ([ago(age) for age in AGES],))
    store(pipeline, logins([ago(age) for age in AGES] + [FAR_PAST], per_day=PER_DAY))
    with pipeline.postgres.connect() as conn:
        for age in AGES:
            conn.execute(
                "INSERT INTO new_device_logins (create_date, user_id, masked_device_id) VALUES (%s, 'u', 'd')",
                (ago(age),),
            )
            conn.execute("INSERT INTO user_device_first_seen VALUES (gen_random_uuid(), %s)", (ago(age),))
            conn.execute(
                "INSERT INTO login_quarantine (message_id, reason, detail, body_bytes, body_hmac, sent_at,"
                " receive_count, masking_key_id, quarantined_at)"
                " VALUES (%s, 'invalid_json', '', 1, 'h', now(), 1, 'k', %s::timestamp AT TIME ZONE 'UTC')",
                (f"q{age}", ago(age)),
            )


def expected_after_a_pass():
    return {
        "user_logins": {ago(age): PER_DAY for age in AGES if age < 30},
        "pii_vault.login_pii": {ago(age): PER_DAY for age in AGES if age < 7},
        "new_device_logins": {ago(age): 1 for age in AGES if age < 30},
        "user_device_first_seen": {ago(age) for age in AGES if age < 30},
        "login_quarantine": {f"q{age}" for age in AGES if age < 14},
    }


def state(pipeline):
    return {
        "user_logins": stored_days(pipeline, "user_logins"),
        "pii_vault.login_pii": stored_days(pipeline, "pii_vault.login_pii"),
        "new_device_logins": stored_days(pipeline, "new_device_logins"),
        "user_device_first_seen": {d for (d,) in pipeline.query("SELECT first_day FROM user_device_first_seen")},
        "login_quarantine": {m for (m,) in pipeline.query("SELECT message_id FROM login_quarantine")},
    }


def test_a_pass_drops_exactly_the_days_past_each_cutoff_and_a_second_finds_nothing(pipeline, history):
    with connect(pipeline, settings.RETENTION_DSN) as conn:
        report = run_retention(conn, POLICY, TODAY)
        again = run_retention(conn, POLICY, TODAY)

    assert state(pipeline) == expected_after_a_pass()
    assert report.days_dropped == {
        "pii_vault.login_pii": [ago(age) for age in sorted(AGES, reverse=True) if age >= 7],
        "public.user_logins": [ago(40), ago(35), ago(30)],
    }
    assert report.rows_removed["public.user_logins"] == 3 * PER_DAY
    assert report.rows_removed["public.user_logins_default"] == PER_DAY  # the far past day, by row
    assert report.rows_removed["public.login_quarantine"] == len([a for a in AGES if a >= 14])
    assert FAR_PAST not in report.days_made  # deleted, not given a partition first
    assert again.days_dropped == {} and set(again.rows_removed.values()) == {0} and again.days_made == []
    # the partitions themselves are gone, not emptied
    assert not pipeline.query(
        "SELECT partition FROM logins_day_partitions('public.user_logins') WHERE end_day <= %s", (ago(29),)
    )


def test_a_pass_after_an_interrupted_one_ends_the_same(pipeline, history):
    with connect(pipeline, settings.RETENTION_DSN) as conn:
        # what a pass killed after its first drop leaves: that day is gone, whole, and the others are there
        ((oldest,),) = conn.execute(
            "SELECT partition FROM logins_day_partitions('public.user_logins') ORDER BY first_day LIMIT 1"
        ).fetchall()
        conn.execute("SELECT logins_drop_partition(%s)", (oldest,))
        run_retention(conn, POLICY, TODAY)
    assert state(pipeline) == expected_after_a_pass()


def test_the_retention_login_drops_days_but_reads_nothing(pipeline, history):
    with connect(pipeline, settings.RETENTION_DSN) as conn:
        for statement in (
            "SELECT count(*) FROM user_logins",
            "SELECT count(*) FROM pii_vault.login_pii",
            "DROP TABLE user_logins_default",
            "SELECT logins_drop_partition('public.daily_login_stats')",
        ):
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege if "drop_partition" not in statement else psycopg.Error
            ):
                conn.execute(statement)


def test_a_pass_deletes_the_suppressions_past_their_keep_until_only(pipeline):
    with pipeline.postgres.connect() as conn:
        conn.execute(
            "INSERT INTO erasure_suppression (user_hash, masking_key_id, keep_until)"
            " VALUES ('past', 'k', now() - interval '1 second'), ('to come', 'k', now() + interval '1 hour')"
        )
    with connect(pipeline, settings.RETENTION_DSN) as conn:
        report = run_retention(conn, RetentionPolicy(), TODAY)
        again = run_retention(conn, RetentionPolicy(), TODAY)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM erasure_suppression")  # only through the function
    assert (report.suppressions_expired, again.suppressions_expired) == (1, 0)
    assert pipeline.query("SELECT user_hash FROM erasure_suppression") == [("to come",)]


def test_reveal_of_a_login_whose_originals_retention_removed_says_when(pipeline, history):
    with connect(pipeline, settings.RETENTION_DSN) as conn:
        run_retention(conn, POLICY, TODAY)
    kept_row, kept_originals = [
        pipeline.scalar("SELECT message_id FROM user_logins WHERE create_date = %s LIMIT 1", (ago(age),))
        for age in (10, 5)
    ]
    with connect(pipeline, settings.PII_READER_DSN) as reader:
        with pytest.raises(RemovedByRetention) as removed:
            reveal(reader, pipeline.vault_key, kept_row, "retention test")
        assert reveal(reader, pipeline.vault_key, kept_originals, "retention test").ip.startswith("10.")
        with pytest.raises(NotInVault) as unknown:
            reveal(reader, pipeline.vault_key, "no-such-message", "retention test")
    assert str(removed.value) == (
        f"the originals of message {kept_row} (a login of {ago(10)}) were removed by retention on {TODAY}"
        " (the attempt is audited)"
    )
    assert not isinstance(unknown.value, RemovedByRetention)
