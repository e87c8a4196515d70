"""Migrations 0004-0007 on a live table: a user_logins of the previous schema (0001-0003) holding a million
rows becomes the partitioned table while a drain writes to it, without a scan under the swap's lock."""

import json
import threading
import time

import psycopg
import pytest

from logins_pipeline import settings
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.drain import ingest
from logins_pipeline.drain.ingest import DrainLimits, drain
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations, migrations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HISTORY_ROWS = 1_000_000
HISTORY_DAYS = 100
VAULT_ROWS = 1_000
DRAINED = 4_000
ATTACH_WITHOUT_SCAN = (
    'partition constraint for table "user_logins_before_partitioning" is implied by existing constraints'
)


def previous_schema(conn: psycopg.Connection) -> None:
    """The database as migrations 0001-0003 left it, with a million rows over 100 days and a thousand
    vault rows, bulk-loaded in SQL."""
    conn.execute("DROP TABLE public.user_logins, pii_vault.login_pii CASCADE")
    conn.execute("DELETE FROM public.logins_schema_migrations")
    for version, sql in migrations():
        if version <= 3:
            conn.execute(sql)
            conn.execute("INSERT INTO public.logins_schema_migrations (version) VALUES (%s)", (version,))
    conn.execute(
        """
        INSERT INTO public.user_logins (user_id, device_type, masked_ip, masked_device_id, locale, app_version,
                                        create_date, message_id, sent_at, masking_key_id)
        SELECT 'history-' || i %% 50000, 'ios', md5(i::text), md5('device' || i), 'RU', 1002003, day,
               'history-' || i, day, 'history'
        FROM generate_series(1, %(rows)s) AS i,
             LATERAL (SELECT (now() AT TIME ZONE 'UTC')::date - %(days)s + i %% %(days)s AS day) AS d
        """,
        {"rows": HISTORY_ROWS, "days": HISTORY_DAYS},
    )
    conn.execute(
        "INSERT INTO pii_vault.login_pii (message_id, ip_ciphertext, device_id_ciphertext, vault_key_id)"
        " SELECT 'history-' || i, '\\x01', '\\x02', 'vault-key' FROM generate_series(1, %s) AS i",
        (VAULT_ROWS,),
    )
    conn.execute("ANALYZE public.user_logins")


def bodies(count: int) -> list[str]:
    return [
        json.dumps(
            {
                "user_id": f"drained-{n}",
                "app_version": "2.0",
                "device_type": "android",
                "ip": f"10.0.{n // 250}.{n % 250}",
                "device_id": f"d{n}",
            }
        )
        for n in range(count)
    ]


def test_a_million_row_table_is_partitioned_while_a_drain_writes_nothing_lost_or_doubled(pipeline, monkeypatch):
    with pipeline.postgres.connect() as conn:
        previous_schema(conn)
    pipeline.seed(bodies(DRAINED))
    # This drain began before the migration: it checked the schema then (as every run does) and goes on.
    monkeypatch.setattr(ingest, "apply_migrations", lambda conn: [])
    writer = PostgresResource(dsn=pipeline.env[settings.POSTGRES_DSN])
    limits = DrainLimits(chunk_size=100, receivers=1, build_processes=0)
    outcome: dict[str, ingest.DrainSummary] = {}
    draining = threading.Thread(
        target=lambda: outcome.update(summary=drain(pipeline.sqs, writer, PiiKeys(pipeline.key), limits))
    )
    draining.start()
    drained = "SELECT count(*) FROM user_logins WHERE user_id LIKE 'drained-%%'"
    while pipeline.scalar(drained) == 0:
        time.sleep(0.05)

    notices = []
    with pipeline.postgres.connect() as conn:
        conn.add_notice_handler(lambda notice: notices.append(notice.message_primary))
        conn.execute("SET client_min_messages = debug1")
        started = conn.execute("SELECT clock_timestamp()").fetchone()[0]
        applied = apply_migrations(conn)
        ended = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    draining.join()

    assert applied == [version for version, _ in migrations() if version >= 4]
    assert ATTACH_WITHOUT_SCAN in notices  # the swap's ATTACH trusted the validated CHECK: no scan under its lock
    # the drain wrote before, during and after the migration, and nothing failed
    written = pipeline.query(
        "SELECT count(*) FILTER (WHERE ingested_at < %s), count(*) FILTER (WHERE ingested_at > %s)"
        " FROM user_logins WHERE user_id LIKE 'drained-%%'",
        (started, ended),
    )[0]
    assert written[0] > 0 and written[1] > 0, written
    summary = outcome["summary"]
    assert (summary.inserted, summary.failed, sum(summary.errors.values())) == (DRAINED, 0, 0)
    # 0 lost, 0 doubled, 0 left
    assert pipeline.query(
        "SELECT count(*), count(DISTINCT message_id) FROM user_logins WHERE user_id LIKE 'drained-%%'"
    ) == [(DRAINED, DRAINED)]
    assert pipeline.scalar("SELECT count(*) FROM user_logins WHERE message_id LIKE 'history-%%'") == HISTORY_ROWS
    assert pipeline.left_in_queues() == 0
    # the old table is the partition of its days; later days have their own partitions
    parts = pipeline.query("SELECT partition, first_day, end_day FROM logins_day_partitions('public.user_logins')")
    legacy = [p for p in parts if p[0] == "public.user_logins_before_partitioning"]
    assert len(legacy) == 1 and (legacy[0][2] - legacy[0][1]).days >= HISTORY_DAYS
    assert [p for p in parts if p[1] >= legacy[0][2]] and all((p[2] - p[1]).days == 1 for p in parts if p != legacy[0])
    # every vault row moved to its day's partition with its login's create_date
    assert (
        pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii JOIN user_logins USING (message_id, create_date)")
        == VAULT_ROWS
    )
    assert pipeline.scalar("SELECT to_regclass('pii_vault.login_pii_before_partitioning')") is None
