"""Daily partition upkeep and retention, as the logins_retention role (migration 0008).

One pass: make the days ahead (and give a day that landed in a default partition its own), then drop the
partitions wholly past each cutoff and delete the expired rows of the tables kept by row. Every step is its own
transaction through a SECURITY DEFINER function, so a pass interrupted anywhere leaves whole days and the next
pass goes on; a second pass finds nothing left to do. Each step waits at most LOCK_TIMEOUT for its lock (a
drop waits for the chunks in flight, and the chunks that come meanwhile wait for it), and is tried again.
Last, it deletes the erased users' suppressions past their keep_until (migration 0010), and rewrites the files
of the relations erasures deleted from since the last pass (erasure.py), so that no erased user's bytes stay
in them.
"""

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg

from logins_pipeline import settings
from logins_pipeline.core.expiry import first_kept_day, today_utc
from logins_pipeline.resources.erased_users import rewrite_pending

DAYS_AHEAD = 7  # partitions made ahead of need: a week without a pass still costs no default-partition rows
LOCK_TIMEOUT = "2s"
ATTEMPTS = 5
ROWS_TABLE, VAULT_TABLE = "public.user_logins", "pii_vault.login_pii"
ROW_LEVEL_ANALYTICS = ("public.new_device_logins", "public.user_device_first_seen")
QUARANTINE_TABLE = "public.login_quarantine"


class RetentionSettingError(ValueError):
    pass


def _days(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise RetentionSettingError(f"{name} must be a whole number of days (1 or more), or unset to keep forever")
    return int(value)


@dataclass(frozen=True)
class RetentionPolicy:
    """Days kept, counting today; None keeps forever."""

    rows: int | None = None  # user_logins and the row-level analytics
    vault: int | None = None  # the vault's originals
    quarantine: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "RetentionPolicy":
        policy = cls(
            _days(environ, settings.RETENTION_DAYS),
            _days(environ, settings.VAULT_RETENTION_DAYS),
            _days(environ, settings.QUARANTINE_RETENTION_DAYS),
        )
        if policy.rows and policy.vault and policy.vault > policy.rows:
            raise RetentionSettingError(
                f"{settings.VAULT_RETENTION_DAYS} ({policy.vault}) is longer than {settings.RETENTION_DAYS} "
                f"({policy.rows}): the originals go with their rows"
            )
        return policy


@dataclass
class RetentionReport:
    days_made: list[date] = field(default_factory=list)
    days_dropped: dict[str, list[date]] = field(default_factory=dict)  # table -> first day of each dropped partition
    rows_removed: dict[str, int] = field(default_factory=dict)  # table -> rows dropped or deleted
    rewritten: list[str] = field(default_factory=list)  # relations an erasure deleted from, rewritten
    suppressions_expired: int = 0  # erasure_suppression rows past keep_until, deleted

    def removed(self, table: str, rows: int, day: date | None = None) -> None:
        self.rows_removed[table] = self.rows_removed.get(table, 0) + rows
        if day is not None:
            self.days_dropped.setdefault(table, []).append(day)


def _step(conn: psycopg.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    """One statement in its own transaction, tried again while its lock is not to be had within LOCK_TIMEOUT."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                row = conn.execute(sql, params).fetchone()
                return None if row is None else row[0]
        except psycopg.errors.LockNotAvailable:
            if attempt == ATTEMPTS:
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


def _expired_partitions(conn: psycopg.Connection, table: str, first_kept: date) -> list[tuple[str, date]]:
    return [
        (partition, first)
        for partition, first, end in conn.execute("SELECT * FROM public.logins_day_partitions(%s)", (table,))
        if end <= first_kept
    ]


def _drop_expired(conn: psycopg.Connection, table: str, first_kept: date, report: RetentionReport) -> None:
    for partition, first in _expired_partitions(conn, table, first_kept):
        report.removed(table, _step(conn, "SELECT public.logins_drop_partition(%s)", (partition,)), first)


def _delete_expired(conn: psycopg.Connection, table: str, first_kept: date, report: RetentionReport) -> None:
    report.removed(table, _step(conn, "SELECT public.logins_delete_before(%s, %s)", (table, first_kept)))


def make_days(conn: psycopg.Connection, today: date, report: RetentionReport) -> None:
    """The days from yesterday to DAYS_AHEAD ahead, and every day found in a default partition."""
    ahead = [today + timedelta(days=n) for n in range(-1, DAYS_AHEAD + 1)]
    landed = [day for (day,) in conn.execute("SELECT * FROM public.logins_default_days()")]
    for day in sorted({*ahead, *landed}):
        if _step(conn, "SELECT public.logins_create_day(%s)", (day,)):
            report.days_made.append(day)


def run_retention(conn: psycopg.Connection, policy: RetentionPolicy, today: date | None = None) -> RetentionReport:
    """One pass (see the module's docstring). `conn` is a logins_retention login's, in autocommit mode."""
    today = today or today_utc()
    report = RetentionReport()
    rows_kept, vault_kept = first_kept_day(today, policy.rows), first_kept_day(today, policy.vault)
    quarantine_kept = first_kept_day(today, policy.quarantine)
    # expired rows leave the default partitions before their days would be given partitions of their own
    if vault_kept:
        _delete_expired(conn, "pii_vault.login_pii_default", vault_kept, report)
    if rows_kept:
        _delete_expired(conn, "public.user_logins_default", rows_kept, report)
    make_days(conn, today, report)
    if vault_kept:
        _drop_expired(conn, VAULT_TABLE, vault_kept, report)
    if rows_kept:
        _drop_expired(conn, ROWS_TABLE, rows_kept, report)  # with the vault's rows of those days
        for table in ROW_LEVEL_ANALYTICS:
            _delete_expired(conn, table, rows_kept, report)
    if quarantine_kept:
        _delete_expired(conn, QUARANTINE_TABLE, quarantine_kept, report)
    report.suppressions_expired = _step(conn, "SELECT public.logins_delete_expired_suppressions()", ())
    report.rewritten = rewrite_pending(conn)  # the erasures' since the last pass (erasure.py)
    return report
