"""The daily partition upkeep and retention pass (logins_pipeline/retention.py) as an asset, on a schedule.

Its own group, apart from the logins lineage: it reads no asset and produces none of the data's tables; what
each pass made and removed is its materialization's metadata.
"""

from typing import Any

import dagster as dg

from logins_pipeline import settings
from logins_pipeline.resources.postgres import PostgresResource
from logins_pipeline.retention import RetentionPolicy, RetentionReport, run_retention


def _metadata(policy: RetentionPolicy, report: RetentionReport) -> dict[str, Any]:
    kept = {f"days_kept_{name}": days or "forever" for name, days in vars(policy).items()}
    dropped = {
        f"days_dropped {table}": dg.MetadataValue.text(", ".join(map(str, days)))
        for table, days in report.days_dropped.items()
    }
    return {
        **kept,
        "days_made": len(report.days_made),
        "days_dropped": sum(len(days) for days in report.days_dropped.values()),
        "rows_removed": sum(report.rows_removed.values()),
        "relations_rewritten": len(report.rewritten),
        "suppressions_expired": report.suppressions_expired,
        **{f"rows_removed {table}": rows for table, rows in report.rows_removed.items()},
        **dropped,
    }


@dg.asset(
    group_name="maintenance",
    kinds={"postgres"},
    description="Makes the day partitions of user_logins and the vault a week ahead (and one for a day that "
    "landed in a default partition), then drops the days past LOGINS_RETENTION_DAYS (rows, row-level "
    "analytics), LOGINS_VAULT_RETENTION_DAYS (originals) and LOGINS_QUARANTINE_RETENTION_DAYS; unset keeps forever.",
)
def logins_retention(retention_postgres: PostgresResource) -> dg.MaterializeResult:
    if not retention_postgres.dsn:
        raise dg.Failure(f"{settings.RETENTION_DSN} is not set: the pass runs as a logins_retention login")
    policy = RetentionPolicy.from_environment()
    with retention_postgres.connect() as conn:
        report = run_retention(conn, policy)
    return dg.MaterializeResult(metadata=_metadata(policy, report))


retention_job = dg.define_asset_job("retention_job", selection=[logins_retention])

retention = dg.ScheduleDefinition(
    name="retention",
    job=retention_job,
    cron_schedule="15 0 * * *",  # daily, a quarter past midnight UTC: yesterday is complete
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,  # the days ahead are made by it, retention set or not
    description="Daily: day partitions a week ahead, and the days past their retention dropped.",
)
