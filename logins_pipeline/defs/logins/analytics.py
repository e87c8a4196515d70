"""The daily analytics assets downstream of user_logins, partitioned by create_date (UTC), computed in
Postgres (logins_pipeline/analytics.py) and refreshed by declarative automation (automation.py).

Each asset checks its own day as it writes it (check_specs): the check result belongs to that
materialization and that partition.
"""

import warnings
from datetime import date

import dagster as dg
from pydantic import Field

from logins_pipeline import analytics
from logins_pipeline.defs.logins.assets import GROUP, user_logins
from logins_pipeline.defs.logins.automation import DAYS_WRITTEN, NEW_DEVICE_DAYS_INVALIDATED, refresh_written_days
from logins_pipeline.resources.postgres import PostgresResource

# end_offset=1: today's partition exists while today's logins arrive (it is refreshed again as they do).
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)

# The default thresholds of shared_devices / shared_addresses (README "Analytics" says why).
DEVICE_MIN_USERS = 3
ADDRESS_MIN_USERS = 10


class SharedDevicesConfig(dg.Config):
    min_users: int = Field(default=DEVICE_MIN_USERS, ge=2, description="Distinct users a device needs in a day")


class SharedAddressesConfig(dg.Config):
    min_users: int = Field(default=ADDRESS_MIN_USERS, ge=2, description="Distinct users an address needs in a day")


def _spec(table: analytics.Table, description: str, *condition_keys: str) -> dict:
    return dict(
        name=table.name,
        deps=[user_logins],
        group_name=GROUP,
        kinds={"postgres"},
        partitions_def=DAILY,
        description=description,
        metadata={"dagster/table_name": f"public.{table.name}"},
        automation_condition=refresh_written_days(*condition_keys),
        check_specs=[dg.AssetCheckSpec(table.check_name, asset=table.name, description=table.check_description)],
    )


def _materialize(context: dg.AssetExecutionContext, postgres: PostgresResource, table: analytics.Table,
                 min_users: int | None = None) -> dg.MaterializeResult:
    day = date.fromisoformat(context.partition_key)
    with postgres.connect() as conn:
        figures = analytics.refresh_day(conn, table, day, min_users)
        offending = analytics.offending_rows(conn, table, day)
    context.log.info(f"{table.name} {day}: {figures}")
    metadata = {name: dg.MetadataValue.float(float(v)) if isinstance(v, float) else int(v)
                for name, v in figures.items() if name != "rows"}
    return dg.MaterializeResult(
        metadata={"dagster/row_count": figures["rows"], **metadata,
                  **({"min_users": min_users} if min_users is not None else {})},
        check_results=[dg.AssetCheckResult(check_name=table.check_name, passed=offending == 0,
                                           metadata={"offending_rows": offending})],
    )


@dg.asset(**_spec(analytics.DAILY_LOGIN_STATS, "public.daily_login_stats: per day, logins, distinct users, "
                  "devices and addresses, and logins by device_type, locale and app version.", DAYS_WRITTEN))
def daily_login_stats(context: dg.AssetExecutionContext, postgres: PostgresResource):
    return _materialize(context, postgres, analytics.DAILY_LOGIN_STATS)


@dg.asset(**_spec(analytics.SHARED_DEVICES, "public.shared_devices: per day, each masked device id used by at "
                  "least min_users distinct users, with its users and logins.", DAYS_WRITTEN))
def shared_devices(context: dg.AssetExecutionContext, postgres: PostgresResource, config: SharedDevicesConfig):
    return _materialize(context, postgres, analytics.SHARED_DEVICES, config.min_users)


@dg.asset(**_spec(analytics.SHARED_ADDRESSES, "public.shared_addresses: per day, each masked IP used by at least "
                  "min_users distinct users, with its users and logins.", DAYS_WRITTEN))
def shared_addresses(context: dg.AssetExecutionContext, postgres: PostgresResource, config: SharedAddressesConfig):
    return _materialize(context, postgres, analytics.SHARED_ADDRESSES, config.min_users)


@dg.asset(**_spec(analytics.NEW_DEVICE_LOGINS, "public.new_device_logins: per day, the logins whose (user, masked "
                  "device) pair appears on no earlier day: sign-ins from a new device.",
                  DAYS_WRITTEN, NEW_DEVICE_DAYS_INVALIDATED))
def new_device_logins(context: dg.AssetExecutionContext, postgres: PostgresResource):
    return _materialize(context, postgres, analytics.NEW_DEVICE_LOGINS)


@dg.asset(**_spec(analytics.APP_VERSION_ADOPTION, "public.app_version_adoption: per day, the share of that day's "
                  "distinct users who logged in with each app version.", DAYS_WRITTEN))
def app_version_adoption(context: dg.AssetExecutionContext, postgres: PostgresResource):
    return _materialize(context, postgres, analytics.APP_VERSION_ADOPTION)


ANALYTICS_ASSETS = [daily_login_stats, shared_devices, shared_addresses, new_device_logins, app_version_adoption]

daily_analytics_job = dg.define_asset_job(
    "daily_analytics_job",
    selection=dg.AssetSelection.assets(*ANALYTICS_ASSETS),
    description="Recompute one day of every analytics table from user_logins (a backfill: a range of days).",
)

with warnings.catch_warnings():  # use_user_code_server is beta in Dagster 1.13
    warnings.simplefilter("ignore", dg.BetaWarning)
    analytics_automation = dg.AutomationConditionSensorDefinition(
        "analytics_automation",
        target=dg.AssetSelection.assets(*ANALYTICS_ASSETS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        use_user_code_server=True,  # the condition is custom Python (automation.py)
        description="Refreshes the daily analytics partitions of the days each drain wrote, once user_logins' "
        "blocking checks have passed.",
    )
