"""The metadata of the user_logins materialization a check on it is about: its own run's, else the latest."""

from typing import Any

import dagster as dg

from logins_pipeline.defs.logins import assets

RECENT_RUNS = 10  # parallel runs and handovers: a run's own materialization is among the latest few


def user_logins_metadata(context: dg.AssetCheckExecutionContext) -> dict[str, Any]:
    """Name -> value of this run's materialization of user_logins, else of the latest one; {} if none."""
    records = context.instance.fetch_materializations(assets.user_logins.key, limit=RECENT_RUNS).records
    own = [r for r in records if r.run_id == context.run.run_id] or records[:1]
    materialization = own[0].asset_materialization if own else None
    return {key: value.value for key, value in (materialization.metadata if materialization else {}).items()}
