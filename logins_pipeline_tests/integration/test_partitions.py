"""user_logins and the vault partitioned by day (migrations 0004-0007), on a fresh database: a chunk of days
that have no partition is stored whole, the daily maintenance moves those days into partitions of their own,
and a day's analytics read only that day's partition."""

import json
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from logins_pipeline import analytics, settings
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import build_batch
from logins_pipeline.resources.postgres import write_batch

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
FAR_PAST = date(2019, 3, 1)


def day_ms(day: date, second: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000) + second * 1000


def logins(days: list[date], per_day: int) -> list[ReceivedMessage]:
    """per_day logins sent on each of `days`, each with its own ip and device."""
    return [
        ReceivedMessage(
            str(uuid.uuid4()),
            "unused",
            day_ms(day, n),
            1,
            json.dumps(
                {
                    "user_id": f"u{n}",
                    "app_version": "1.2.3",
                    "device_type": "ios",
                    "ip": f"10.{i}.0.{n}",
                    "device_id": f"d{i}-{n}",
                }
            ),
        )
        for i, day in enumerate(days)
        for n in range(per_day)
    ]


def store(pipeline, messages: list[ReceivedMessage], vault: bool = True):
    """One chunk's transaction, as the writer login the drain uses."""
    batch = build_batch(messages, PiiKeys(pipeline.key, pipeline.vault_key if vault else None))
    with psycopg.connect(pipeline.env[settings.POSTGRES_DSN], autocommit=True) as conn:
        return write_batch(conn, batch)


def partitions(pipeline, parent: str) -> dict[date, str]:
    return {
        first: str(name)
        for name, first, end in pipeline.query("SELECT * FROM logins_day_partitions(%s)", (parent,))
        if end == first + timedelta(days=1)
    }


def rows_by_partition(pipeline, parent: str) -> dict[str, int]:
    return dict(pipeline.query(f"SELECT tableoid::regclass::text, count(*) FROM {parent} GROUP BY 1"))


def test_fresh_schema_is_partitioned_by_day_with_days_made_ahead(pipeline):
    kinds = dict(
        pipeline.query(
            "SELECT oid::regclass::text, relkind FROM pg_class WHERE oid IN"
            " ('public.user_logins'::regclass, 'pii_vault.login_pii'::regclass)"
        )
    )
    assert kinds == {"user_logins": "p", "pii_vault.login_pii": "p"}
    ahead = {TODAY + timedelta(days=n) for n in range(-1, 8)}
    assert ahead <= set(partitions(pipeline, "public.user_logins"))
    assert ahead <= set(partitions(pipeline, "pii_vault.login_pii"))
    foreign_key = pipeline.scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'pii_vault.login_pii'::regclass AND contype = 'f' AND conparentid = 0"
    )
    assert foreign_key == (
        "FOREIGN KEY (message_id, create_date) REFERENCES user_logins(message_id, create_date) ON DELETE CASCADE"
    )


def test_a_chunk_of_five_new_days_and_one_far_past_is_stored_whole_then_split_into_its_days(pipeline):
    new_days = [TODAY + timedelta(days=n) for n in range(20, 25)]  # beyond the days made ahead
    messages = logins([*new_days, FAR_PAST], per_day=7)
    assert not {*new_days, FAR_PAST} & set(partitions(pipeline, "public.user_logins"))

    written = store(pipeline, messages)

    assert (written.inserted, written.quarantined) == (42, 0)
    assert rows_by_partition(pipeline, "public.user_logins") == {"user_logins_default": 42}
    assert rows_by_partition(pipeline, "pii_vault.login_pii") == {"pii_vault.login_pii_default": 42}

    # the daily maintenance gives each day its partition, and moves the day's rows (and originals) into it
    made = pipeline.query("SELECT day, logins_create_day(day) FROM unnest(%s::date[]) AS day", ([*new_days, FAR_PAST],))
    assert all(created for _, created in made)
    expected = {f"user_logins_{day:%Y%m%d}": 7 for day in [*new_days, FAR_PAST]}
    assert rows_by_partition(pipeline, "public.user_logins") == expected
    assert rows_by_partition(pipeline, "pii_vault.login_pii") == {f"pii_vault.login_pii_{d[12:]}": 7 for d in expected}
    assert pipeline.scalar("SELECT count(*) FROM user_logins_default") == 0
    # every original still belongs to its login, and a redelivered chunk is still a no-op
    assert (
        pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii JOIN user_logins USING (message_id, create_date)")
        == 42
    )
    again = store(pipeline, messages)
    assert (again.inserted, again.duplicates) == (0, 42)
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii") == 42
    assert pipeline.scalar("SELECT logins_create_day(%s)", (FAR_PAST,)) is False  # twice: nothing to do


def test_a_day_is_made_while_chunks_write_to_the_default_partition_and_none_fails(pipeline):
    """The maintenance takes its lock first, so it never holds the default partition while a chunk that
    holds user_logins waits on it: chunk 1 is in flight, the maintenance queues behind it, chunk 2 behind
    the maintenance; chunk 1 commits, then both others do (without that lock, they deadlock)."""
    writer_dsn = pipeline.env[settings.POSTGRES_DSN]
    batches = [
        build_batch(logins([TODAY + timedelta(days=30)], per_day=5), PiiKeys(pipeline.key, pipeline.vault_key))
        for _ in range(2)
    ]
    outcomes: dict[str, object] = {}

    def run(name, work):
        try:
            with psycopg.connect(
                writer_dsn if name != "maintenance" else pipeline.postgres.dsn, autocommit=True
            ) as conn:
                conn.execute("SELECT set_config('application_name', %s, false)", (f"test-{name}",))
                outcomes[name] = work(conn)
        except psycopg.Error as error:
            outcomes[name] = error

    def waiting(name) -> bool:
        return bool(
            pipeline.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'",
                (f"test-{name}",),
            )
        )

    with psycopg.connect(writer_dsn) as chunk_1:  # a transaction, open until the commit below
        write_batch_open(chunk_1, batches[0])
        maintenance = threading.Thread(
            target=run,
            args=(
                "maintenance",
                lambda c: c.execute("SELECT logins_create_day(%s)", (TODAY + timedelta(days=40),)).fetchone()[0],
            ),
        )
        maintenance.start()
        wait_until(lambda: waiting("maintenance"))
        chunk_2 = threading.Thread(target=run, args=("chunk_2", lambda c: write_batch(c, batches[1]).inserted))
        chunk_2.start()
        wait_until(lambda: waiting("chunk_2"))
        chunk_1.commit()
    maintenance.join()
    chunk_2.join()
    assert outcomes == {"maintenance": True, "chunk_2": 5}
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 10


def write_batch_open(conn: psycopg.Connection, batch) -> None:
    """The COPY of a chunk, left uncommitted: what a chunk in flight holds."""
    from logins_pipeline.resources.postgres import _copy_rows, _copy_value_lists

    with conn.cursor() as cur:
        _copy_rows(cur, "public.user_logins", list(zip(*_copy_value_lists(batch), strict=True)))


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_days_analytics_read_only_that_days_partition(pipeline):
    day = TODAY + timedelta(days=2)
    store(pipeline, logins([day - timedelta(days=1), day, day + timedelta(days=1)], per_day=5))
    load_day = analytics.LOAD_DAY.split(" AS\n", 1)[1]  # the SELECT of CREATE TEMP TABLE login_day AS SELECT ...
    statements = [load_day, analytics.DAILY_LOGIN_STATS.check]
    for statement in statements:
        plan = pipeline.scalar("EXPLAIN (FORMAT JSON) " + statement, {"day": day})
        read = {name for name in relations(plan) if name.startswith("user_logins")}
        assert read == {f"user_logins_{day:%Y%m%d}"}, statement
    rows = pipeline.query(load_day, {"day": day})
    assert len(rows) == 5


def relations(plan) -> set[str]:
    """The tables a JSON plan reads."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if "Relation Name" in node:
                found.add(node["Relation Name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found
