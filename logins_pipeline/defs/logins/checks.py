"""Asset checks that guard public.user_logins, on the days its materialization wrote.

A run writes a day or two (its `days_written`), and each check reads only the partitions of those days: its
cost is that of the days written, not of a table of every day kept. The rows of other days were checked when
they were written. A message's day is the date of its first SentTimestamp, which redelivered and redriven
copies keep (core/origin.py), and each day's key is (message_id, create_date): `message_ids_unique` finds a
message stored twice within the days written (on two of them, or in a day without that key).
"""

from datetime import date

import dagster as dg
import psycopg

from logins_pipeline.core.masking import TOKEN_PATTERN
from logins_pipeline.defs.logins import assets
from logins_pipeline.defs.logins.run_metadata import user_logins_metadata
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations, scalar

DAYS = "create_date = ANY(%(days)s::date[])"  # constants at planning: only those days' partitions are read

# name -> (description, SQL counting the offending rows of the days %(days)s)
TABLE_CHECKS = {
    "no_null_user_id": (
        "Every row of the days written has a user_id.",
        f"SELECT count(*) FROM public.user_logins WHERE {DAYS} AND user_id IS NULL",
    ),
    "masked_values_are_tokens": (
        "Every row this pipeline wrote on the days written holds HMAC tokens (64 hex characters), never a raw value.",
        f"SELECT count(*) FROM public.user_logins WHERE {DAYS} AND masking_key_id IS NOT NULL"
        f" AND (masked_ip !~ '{TOKEN_PATTERN}' OR masked_device_id !~ '{TOKEN_PATTERN}')",
    ),
    "message_ids_unique": (
        "No SQS message id appears twice in the days written (redelivery must be a no-op).",
        f"SELECT count(message_id) - count(DISTINCT message_id) FROM public.user_logins WHERE {DAYS}",
    ),
}


def offending_rows(conn: psycopg.Connection, days: list[date]) -> dict[str, int]:
    """Check name -> the rows of `days` that fail it."""
    return {name: scalar(conn, sql, {"days": days}) for name, (_, sql) in TABLE_CHECKS.items()}


# Blocking: a failure fails the run's check step, and the daily analytics downstream are not refreshed
# from a table that fails them (their automation waits for all_deps_blocking_checks_passed).
@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=assets.user_logins.key, description=text, blocking=True)
        for name, (text, _) in TABLE_CHECKS.items()
    ]
)
def user_logins_checks(context: dg.AssetCheckExecutionContext, postgres: PostgresResource):
    days = [date.fromisoformat(day) for day in user_logins_metadata(context).get("days_written", [])]
    with postgres.connect() as conn:
        apply_migrations(conn)
        for name, offending in offending_rows(conn, days).items():
            yield dg.AssetCheckResult(
                check_name=name,
                asset_key=assets.user_logins.key,
                passed=offending == 0,
                metadata={"offending_rows": offending, "days_checked": len(days)},
            )
