"""Declarative automation of the daily analytics: refresh exactly the days a drain wrote to.

`AutomationCondition.eager()` would refresh only the latest daily partition, but a drain can write rows for
any day: a message that waited in the queue, or one redriven from the dead-letter queue, keeps the day it
was sent. So each materialization of user_logins lists the days it wrote in its metadata (`days_written`),
and the condition below turns the materializations since the previous tick into those days' partitions.
new_device_logins also follows its own materializations' `later_days_invalidated` (analytics.py): a late
login for an earlier day can make a later day's new-device logins stale, and the refresh of the earlier day
says which. It runs in the code server (`use_user_code_server=True`), as custom conditions must.
"""

from datetime import date

import dagster as dg
from dagster._core.asset_graph_view.timing_metadata import TimingMetadata  # no public name in Dagster 1.13

DAYS_WRITTEN = "days_written"
MATERIALIZATIONS_PER_TICK = 1_000  # per source: more drains than this between two 30 s ticks are unheard of


class DaysListedInMaterializations(dg.AutomationCondition):
    """True for the daily partitions whose days a materialization since the previous evaluation lists in
    its metadata: `sources` are (asset key, metadata key) pairs."""

    def __init__(self, sources: tuple[tuple[dg.AssetKey, str], ...]):
        self.sources = sources

    @property
    def name(self) -> str:
        return "days_listed_by(" + ", ".join(f"{key.to_user_string()}.{entry}" for key, entry in self.sources) + ")"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.previous_temporal_context is None or context.partitions_def is None:
            return dg.AutomationResult(context, context.get_empty_subset())  # first tick: from now on
        after = context.previous_max_storage_id or 0  # None: the event log was empty on the previous tick
        listed_at: dict[str, float] = {}  # partition key -> when the latest materialization that listed it happened
        for asset_key, entry in self.sources:
            records = context.asset_graph_view.instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key, after_storage_id=after, before_storage_id=(context.max_storage_id or after) + 1
                ),
                limit=MATERIALIZATIONS_PER_TICK,
            ).records
            for record in records:
                materialization = record.asset_materialization
                assert materialization is not None, "fetch_materializations returns materializations"
                for day in listed_days(dict(materialization.metadata), entry):
                    listed_at[day] = max(listed_at.get(day, 0.0), record.timestamp)
        partitions_def = context.partitions_def
        keys = set(partitions_def.get_partition_keys()) & set(listed_at)

        def subset(partition_keys):
            return context.asset_graph_view.get_subset_from_partition_keys(
                context.key, partitions_def, set(partition_keys)
            )

        # When each day was listed: if the same tick also sees the partition requested, `since` keeps it
        # true only if the listing came after the request.
        timing = TimingMetadata(
            timestamps={at: subset(k for k in keys if listed_at[k] == at) for at in {listed_at[k] for k in keys}}
        )
        return dg.AutomationResult(
            context, context.candidate_subset.compute_intersection(subset(keys)), timing_metadata=timing
        )


def listed_days(metadata: dict, entry: str) -> list[str]:
    """The ISO days under `entry` (days before the partitions start are simply not partitions)."""
    return [date.fromisoformat(day).isoformat() for day in metadata[entry].value] if entry in metadata else []


def refresh_listed_days(*sources: tuple[dg.AssetKey, str]) -> dg.AutomationCondition:
    """Refresh the partitions of the days listed by `sources` (for all: the days a drain wrote), once
    user_logins' blocking checks have passed on its latest materialization. A listed day stays due from
    the tick that sees it until the partition is requested, so a check that finishes a tick later only
    delays the refresh. (Not `since_last_handled()`: its reset also counts a materialization, and on a tick
    that sees both a drain and a refresh of the same day it cannot tell which came first, so the drain's
    rows would be dropped.)"""
    return (
        DaysListedInMaterializations(sources).since(dg.AutomationCondition.newly_requested())
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("refresh_days_written_by_drains")
