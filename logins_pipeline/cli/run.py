"""Run ingest_logins_job in this process, recorded in the Dagster instance at DAGSTER_HOME (so it
shows in the UI like any other run), and sum up what it did."""

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from logins_pipeline.definitions import defs
from logins_pipeline.defs.logins.assets import IngestConfig, ingest_logins, login_quarantine, user_logins
from logins_pipeline.errors import innermost_message


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    error: str = ""
    metadata: dict = field(default_factory=dict)  # user_logins' materialization metadata
    reasons: dict = field(default_factory=dict)  # quarantined count by reason code


INTERRUPTED = (
    "interrupted (SIGTERM, or cancelled): it stopped receiving, the chunk in flight was committed and "
    "deleted, and what it had received after that is back in the queue"
)


def _first_failure(result: dg.ExecuteInProcessResult) -> str:
    """The first error of the run: a step's, or a resource's that refused to start (an unusable key)."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if error:
            if error.cls_name == dg.DagsterExecutionInterruptedError.__name__:
                return INTERRUPTED
            lines = innermost_message(error).strip().splitlines()
            return lines[0] if lines else "step failed"
    return "run failed"


def _open_instance() -> dg.DagsterInstance:
    """The instance at DAGSTER_HOME. The first open of an instance creates its storage, and processes doing
    that at once race in Dagster's schema migrations (seen with four `run`s on a fresh SQLite DAGSTER_HOME:
    "table ... already exists", "more than one head"), so opens are serialized by a lock file."""
    with open(Path(os.environ["DAGSTER_HOME"]) / ".logins-open.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return dg.DagsterInstance.get()


def run_ingest_job(instance: dg.DagsterInstance | None = None, **config) -> RunOutcome:
    job = defs.resolve_job_def("ingest_logins_job")
    result = job.execute_in_process(
        instance=instance or _open_instance(),
        run_config=dg.RunConfig(
            ops={ingest_logins.op.name: IngestConfig(**config)},
            loggers={"console": {"config": {"log_level": "INFO"}}},  # progress lines, not every event
        ),
        raise_on_error=False,
    )
    if not result.success:
        return RunOutcome(result.run_id, False, error=_first_failure(result))
    values: dict[dg.AssetKey, dict[str, Any]] = {
        m.asset_key: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(ingest_logins.op.name)
    }
    return RunOutcome(
        result.run_id,
        True,
        metadata=values[user_logins.key],
        reasons=values[login_quarantine.key]["quarantined_by_reason"],
    )


def run_analytics_day(day: str, instance: dg.DagsterInstance | None = None) -> RunOutcome:
    """Materialize one day (YYYY-MM-DD) of every analytics table; metadata: asset name -> its figures."""
    result = defs.resolve_job_def("daily_analytics_job").execute_in_process(
        instance=instance or _open_instance(),
        partition_key=day,
        run_config=dg.RunConfig(loggers={"console": {"config": {"log_level": "WARNING"}}}),
        raise_on_error=False,
    )
    if not result.success:
        return RunOutcome(result.run_id, False, error=_first_failure(result))
    figures = {
        m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("daily_analytics")
    }
    return RunOutcome(result.run_id, True, metadata=figures)


def run_retention_job(instance: dg.DagsterInstance | None = None) -> RunOutcome:
    """One retention pass (the `retention` schedule's job); metadata: what it made and removed."""
    result = defs.resolve_job_def("retention_job").execute_in_process(
        instance=instance or _open_instance(),
        run_config=dg.RunConfig(loggers={"console": {"config": {"log_level": "WARNING"}}}),
        raise_on_error=False,
    )
    if not result.success:
        return RunOutcome(result.run_id, False, error=_first_failure(result))
    (materialization,) = result.asset_materializations_for_node("logins_retention")
    return RunOutcome(result.run_id, True, metadata={k: v.value for k, v in materialization.metadata.items()})
