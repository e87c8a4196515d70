"""The daily analytics assets downstream of user_logins, partitioned by create_date (UTC), computed in
Postgres (logins_pipeline/analytics.py) and refreshed by declarative automation (automation.py).

One multi-asset step computes a day of the five tables (of those selected: a run may refresh only some),
and checks each as it writes it: the check result belongs to that materialization and that partition.
"""

import warnings
from datetime import date

import dagster as dg
from pydantic import Field

from logins_pipeline import analytics
from logins_pipeline.analytics import ADDRESS_MIN_USERS, DEVICE_MIN_USERS
from logins_pipeline.defs.logins import assets
from logins_pipeline.defs.logins.automation import DAYS_WRITTEN, refresh_listed_days
from logins_pipeline.resources.postgres import PostgresResource

# end_offset=1: today's partition exists while today's logins arrive (it is refreshed again as they do).
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)


WRITTEN_BY_A_DRAIN = (assets.user_logins.key, DAYS_WRITTEN)
LATER_DAYS_INVALIDATED = "later_days_invalidated"


class AnalyticsConfig(dg.Config):
    device_min_users: int = Field(
        default=DEVICE_MIN_USERS, ge=2, description="shared_devices: distinct users a device needs in a day"
    )
    address_min_users: int = Field(
        default=ADDRESS_MIN_USERS, ge=2, description="shared_addresses: distinct users an address needs in a day"
    )


def _spec(table: analytics.Table, description: str, *sources: tuple[dg.AssetKey, str]) -> dg.AssetSpec:
    return dg.AssetSpec(
        table.name,
        deps=[assets.user_logins],
        group_name=assets.GROUP,
        kinds={"postgres"},
        description=description,
        metadata={"dagster/table_name": f"public.{table.name}"},
        automation_condition=refresh_listed_days(*sources),
    )


SPECS = {
    analytics.DAILY_LOGIN_STATS: _spec(
        analytics.DAILY_LOGIN_STATS,
        "public.daily_login_stats: per day, logins, distinct users, devices and "
        "addresses, and logins by device_type, locale and app version.",
        WRITTEN_BY_A_DRAIN,
    ),
    analytics.SHARED_DEVICES: _spec(
        analytics.SHARED_DEVICES,
        "public.shared_devices: per day, each masked device id used by at least "
        "min_users distinct users, with its users and logins.",
        WRITTEN_BY_A_DRAIN,
    ),
    analytics.SHARED_ADDRESSES: _spec(
        analytics.SHARED_ADDRESSES,
        "public.shared_addresses: per day, each masked IP used by at least "
        "min_users distinct users, with its users and logins.",
        WRITTEN_BY_A_DRAIN,
    ),
    analytics.NEW_DEVICE_LOGINS: _spec(
        analytics.NEW_DEVICE_LOGINS,
        "public.new_device_logins: per day, the logins whose (user, masked device) "
        "pair appears on no earlier day: sign-ins from a new device.",
        WRITTEN_BY_A_DRAIN,
        (dg.AssetKey(analytics.NEW_DEVICE_LOGINS.name), LATER_DAYS_INVALIDATED),
    ),
    analytics.APP_VERSION_ADOPTION: _spec(
        analytics.APP_VERSION_ADOPTION,
        "public.app_version_adoption: per day, the share of that day's distinct "
        "users who logged in with each app version.",
        WRITTEN_BY_A_DRAIN,
    ),
}


@dg.multi_asset(
    name="daily_analytics",
    specs=list(SPECS.values()),
    partitions_def=DAILY,
    can_subset=True,  # the automation may refresh one table of a day (new_device_logins) and not the others
    check_specs=[
        dg.AssetCheckSpec(table.check_name, asset=spec.key, description=table.check_description)
        for table, spec in SPECS.items()
    ],
)
def daily_analytics(context: dg.AssetExecutionContext, config: AnalyticsConfig, postgres: PostgresResource):
    """One step, one transaction for the day's tables (those selected: a run may refresh only some)."""
    day = date.fromisoformat(context.partition_key)
    tables = [table for table, spec in SPECS.items() if spec.key in context.selected_asset_keys]
    min_users = {
        analytics.SHARED_DEVICES.name: config.device_min_users,
        analytics.SHARED_ADDRESSES.name: config.address_min_users,
    }
    with postgres.connect() as conn:
        refreshed = analytics.refresh_day(conn, tables, day, min_users)
        offending = {table.name: analytics.offending_rows(conn, table, day) for table in tables}
    for table in tables:
        done = refreshed[table.name]
        context.log.info(f"{table.name} {day}: {done.rows} rows, {done.figures}")
        metadata = {"dagster/row_count": done.rows, **_numbers(done.figures)}
        if table.name in min_users:
            metadata["min_users"] = min_users[table.name]
        if table.invalidated:
            invalidated = [d.isoformat() for d in done.later_days_invalidated]
            metadata[LATER_DAYS_INVALIDATED] = dg.MetadataValue.json(invalidated)
        yield dg.MaterializeResult(
            asset_key=SPECS[table].key,
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name=table.check_name,
                    asset_key=SPECS[table].key,
                    passed=offending[table.name] == 0,
                    metadata={"offending_rows": offending[table.name]},
                )
            ],
        )


def _numbers(figures: dict) -> dict:
    return {
        name: dg.MetadataValue.float(value) if isinstance(value, float) else int(value)
        for name, value in figures.items()
    }


daily_analytics_job = dg.define_asset_job(
    "daily_analytics_job",
    selection=dg.AssetSelection.assets(daily_analytics),
    description="Recompute one day of every analytics table from user_logins (a backfill: a range of days).",
)

with warnings.catch_warnings():  # use_user_code_server is beta in Dagster 1.13
    warnings.simplefilter("ignore", dg.BetaWarning)
    analytics_automation = dg.AutomationConditionSensorDefinition(
        "analytics_automation",
        target=dg.AssetSelection.assets(daily_analytics),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        use_user_code_server=True,  # the condition is custom Python (automation.py)
        description="Refreshes the daily analytics partitions of the days each drain wrote, once user_logins' "
        "blocking checks have passed.",
    )
