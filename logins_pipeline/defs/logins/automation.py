"""Declarative automation of the daily analytics: refresh exactly the days a drain wrote to.

`AutomationCondition.eager()` would refresh only the latest daily partition, but a drain can write rows for
any day: a message that waited in the queue, or one redriven from the dead-letter queue, keeps the day it
was sent. So each materialization of user_logins records the days it wrote in its metadata
(`days_written`, and `new_device_days_invalidated` for new_device_logins: see analytics.days_written_since),
and the condition below turns the materializations since the previous tick into those days' partitions.
It runs in the code server (`use_user_code_server=True`), as custom conditions must.
"""

from datetime import date

import dagster as dg
from dagster._core.asset_graph_view.timing_metadata import TimingMetadata  # no public name in Dagster 1.13

from logins_pipeline.defs.logins.assets import user_logins

DAYS_WRITTEN = "days_written"
NEW_DEVICE_DAYS_INVALIDATED = "new_device_days_invalidated"
MATERIALIZATIONS_PER_TICK = 1_000  # more drains than this between two 30 s ticks would be unheard of


class DaysWrittenByADrain(dg.AutomationCondition):
    """True for the daily partitions whose days a user_logins materialization since the previous evaluation
    lists under any of `metadata_keys`."""

    def __init__(self, metadata_keys: tuple[str, ...]):
        self.metadata_keys = metadata_keys

    @property
    def name(self) -> str:
        return f"days_written_by_a_drain({', '.join(self.metadata_keys)})"

    def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        if context.previous_temporal_context is None or context.partitions_def is None:
            return dg.AutomationResult(context, context.get_empty_subset())  # first tick: from now on
        after = context.previous_max_storage_id or 0  # None: the event log was empty on the previous tick
        records = context.asset_graph_view.instance.fetch_materializations(
            dg.AssetRecordsFilter(user_logins.key, after_storage_id=after,
                                  before_storage_id=(context.max_storage_id or after) + 1),
            limit=MATERIALIZATIONS_PER_TICK,
        ).records
        written_at = {}  # partition key -> when the latest materialization that wrote its day happened
        for record in records:
            for day in days_in(record.asset_materialization.metadata, self.metadata_keys):
                written_at[day.isoformat()] = max(written_at.get(day.isoformat(), 0.0), record.timestamp)
        keys = set(context.partitions_def.get_partition_keys()) & set(written_at)

        def subset(partition_keys):
            return context.asset_graph_view.get_subset_from_partition_keys(
                context.key, context.partitions_def, set(partition_keys))

        # When the day was written: if the same tick also sees the partition requested, `since` keeps it
        # true only if the drain's write came after the request.
        timing = TimingMetadata(timestamps={
            at: subset(k for k in keys if written_at[k] == at) for at in {written_at[k] for k in keys}})
        return dg.AutomationResult(context, context.candidate_subset.compute_intersection(subset(keys)),
                                   timing_metadata=timing)


def days_in(metadata: dict, keys: tuple[str, ...]) -> set[date]:
    return {date.fromisoformat(day) for key in keys if key in metadata for day in metadata[key].value}


def refresh_written_days(*metadata_keys: str) -> dg.AutomationCondition:
    """Refresh the partitions of the days a drain wrote, once user_logins' blocking checks have passed on
    that materialization: remembered from the tick it was seen until the partition is requested, so a
    check that finishes a tick later only delays the refresh. (Not `since_last_handled()`: its reset also
    counts a materialization, and on a tick that sees both a drain and a refresh of the same day it
    cannot tell which came first, so the drain's rows would be dropped.)"""
    return (
        DaysWrittenByADrain(metadata_keys).since(dg.AutomationCondition.newly_requested())
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("refresh_days_written_by_drains")
