"""The login assets: raw_login_messages -> masked_logins -> user_logins (+ login_quarantine).

One multi-asset produces all four in one step, in memory: the raw messages hold plaintext PII and the
masked batches are re-identifiable, so neither may pass through an IO manager (the default one pickles
every output into DAGSTER_HOME/storage). The specs' deps still draw the lineage raw -> masked -> table.
"""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from logins_pipeline.analytics import days_written_since
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.defs.logins.column_schema import column_schema
from logins_pipeline.defs.logins.freshness import USER_LOGINS_FRESHNESS
from logins_pipeline.drain.ingest import (
    MAX_CHUNK_SIZE,
    MAX_MIB_IN_HAND,
    MIB,
    SHUTDOWN_SECONDS,
    STALL_SECONDS,
    DrainLimits,
    DrainSummary,
    drain_until_interrupted,
)
from logins_pipeline.drain.pipeline import BUILD_PROCESSES
from logins_pipeline.privacy.log_redaction import install_redaction, redacted_errors
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource
from logins_pipeline.resources.sqs import SQSResource
from logins_pipeline.resources.vault import VaultResource
from logins_pipeline.retention import RetentionPolicy

GROUP = "logins"
DAYS_WRITTEN_MARGIN_S = 1  # rows are looked for this much further back than the drain lasted (clock slack)
POOL = "logins_ingest"  # the instance limits how many runs hold it at once (dagster.yaml: concurrency.pools)
# A run expected to reach its message or time bound within this long tags itself ENDING_TAG, and the sensor
# starts its successor meanwhile (its 10 s interval and a run's start-up: 15-20 s here), so a live stream is never left
# without a run.
HANDOVER_SECONDS = 60
ENDING_TAG = "logins/ending"
# user_logins' materialization metadata: the send -> COMMIT delay of the run's messages (SentTimestamp to
# the time their transaction committed), in seconds; plotted over runs by the UI.
DELAY_METADATA = {
    "p50": "send_to_commit_p50_seconds",
    "p95": "send_to_commit_p95_seconds",
    "max": "send_to_commit_max_seconds",
}

raw_login_messages = dg.AssetSpec(
    "raw_login_messages",
    group_name=GROUP,
    kinds={"sqs"},
    description="One bounded drain of the SQS login-queue. Holds plaintext PII: kept in memory only.",
)
masked_logins = dg.AssetSpec(
    "masked_logins",
    deps=[raw_login_messages],
    group_name=GROUP,
    kinds={"pandas", "pandera"},
    description="Parsed, flattened, normalised logins with ip/device_id replaced by keyed HMAC tokens, "
    "validated by the MaskedLogin pandera schema; with LOGINS_VAULT_KEY set, the originals are also "
    "AES-SIV-encrypted for pii_vault.login_pii. Kept in memory only.",
    metadata={"dagster/column_schema": column_schema()},
)
user_logins = dg.AssetSpec(
    "user_logins",
    deps=[masked_logins],
    group_name=GROUP,
    kinds={"postgres"},
    description="Postgres table public.user_logins: one row per valid login message (unique message_id).",
    metadata={"dagster/column_schema": column_schema(), "dagster/table_name": "public.user_logins"},
    freshness_policy=USER_LOGINS_FRESHNESS,
)
login_quarantine = dg.AssetSpec(
    "login_quarantine",
    deps=[masked_logins],
    group_name=GROUP,
    kinds={"postgres"},
    description="Postgres table public.login_quarantine: messages that could not become a row, with the "
    "reason. PII fields are masked; unparseable bodies are kept only as size and keyed hash.",
    metadata={"dagster/table_name": "public.login_quarantine"},
)


class IngestConfig(dg.Config):
    max_messages: int = Field(default=100_000, ge=1, description="Stop after this many messages in one run")
    chunk_size: int = Field(
        default=10_000, ge=1, le=MAX_CHUNK_SIZE, description="Messages per transaction (commit, then delete)"
    )
    receivers: int = Field(default=4, ge=1, le=32, description="Parallel SQS receivers")
    build_processes: int = Field(
        default=BUILD_PROCESSES,
        ge=0,
        le=32,
        description="Worker processes that parse, mask and validate chunks of 1,000 messages or more while "
        "the run writes the chunk before (default: the number of CPUs, at most 4; 0: none)",
    )
    max_mib_in_hand: int = Field(
        default=MAX_MIB_IN_HAND,
        ge=1,
        description="MiB of message bodies the run holds at once, received and not yet deleted: a chunk closes "
        "early at its share, this over (build_processes + 3). At least 10 MiB per chunk",
    )
    visibility_timeout: int | None = Field(
        default=None,
        ge=1,
        description="Seconds a received message stays hidden, renewed while its chunk is in hand "
        "(default: the SQS resource's, 120)",
    )
    batching_window_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A chunk closes once its first message has waited this long, unless the run is behind "
        "the queue (it then fills the chunk): the most a live stream's logins wait in the run",
    )
    idle_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Once the queue is dry, keep receiving this long after the last message before ending "
        "(0: end when it is dry; the sensor's runs wait 60 s, so a live stream keeps its run)",
    )
    max_seconds: float = Field(
        default=900.0, gt=0, description="Receive no new chunk after this long: the next run takes over"
    )
    stall_timeout: int = Field(
        default=STALL_SECONDS,
        ge=1,
        description="Seconds one wait (a Postgres transaction, a build, a receive) may last before the run "
        "fails as stalled and returns its messages to the queue",
    )
    shutdown_timeout: int = Field(
        default=SHUTDOWN_SECONDS,
        ge=1,
        description="Seconds the drain takes at most to stop after SIGTERM or a cancel: it commits the chunk in "
        "hand and returns the rest to the queue; the process exits some 5 s later (ECS kills a task 30 s after "
        "SIGTERM by default)",
    )


def _lag_seconds(summary: DrainSummary) -> float:
    if summary.oldest_sent_at is None:
        return 0.0
    return round((datetime.now(UTC) - summary.oldest_sent_at).total_seconds(), 3)


def _days_written(postgres: PostgresResource, drain_seconds: float) -> dict:
    """The days this run (and any run alongside it) wrote rows to: what the analytics' automation refreshes
    (defs/logins/automation.py). Asked after the drain, on the database's clock (ingested_at's)."""
    with postgres.connect() as conn:
        written = days_written_since(conn, drain_seconds + DAYS_WRITTEN_MARGIN_S)
    return {"days_written": dg.MetadataValue.json([d.isoformat() for d in written]), "days_written_count": len(written)}


def _ends_soon(summary: DrainSummary, limits: DrainLimits) -> bool:
    """Whether the run will reach its time bound, or at its rate so far its message bound, within
    HANDOVER_SECONDS."""
    if summary.seconds + HANDOVER_SECONDS >= limits.max_seconds:
        return True
    return summary.received + summary.rate * HANDOVER_SECONDS >= limits.max_messages


def _delays(summary: DrainSummary) -> dict:
    return {
        DELAY_METADATA[name]: dg.MetadataValue.float(round(v, 3)) for name, v in summary.delay_percentiles().items()
    }


def _results(summary: DrainSummary, days: dict):
    rate = dg.MetadataValue.float(round(summary.rate, 1))
    lag = dg.MetadataValue.float(_lag_seconds(summary))
    yield dg.MaterializeResult(
        asset_key=raw_login_messages.key,
        metadata={"received": summary.received, "lag_seconds": lag, "chunks": summary.chunks},
    )
    yield dg.MaterializeResult(
        asset_key=masked_logins.key,
        metadata={
            "valid": summary.received - summary.quarantined - summary.duplicates,
            "rejected": summary.quarantined,
        },
    )
    yield dg.MaterializeResult(
        asset_key=user_logins.key,
        metadata={
            "received": summary.received,
            "inserted": summary.inserted,
            "duplicates_skipped": summary.duplicates,
            "quarantined": summary.quarantined,
            "failed_left_in_queue": summary.failed,
            "delete_failures": summary.delete_failures,
            "stale_handles": summary.stale,
            "suppressed": summary.suppressed,
            "messages_per_second": rate,
            "lag_seconds": lag,
            "seconds": dg.MetadataValue.float(round(summary.seconds, 3)),
            **_delays(summary),
            **days,
        },
    )
    yield dg.MaterializeResult(
        asset_key=login_quarantine.key,
        metadata={
            "quarantined": summary.quarantined,
            "quarantined_by_reason": dg.MetadataValue.json(dict(summary.reasons)),
        },
    )


@dg.multi_asset(
    specs=[raw_login_messages, masked_logins, user_logins, login_quarantine], name="ingest_logins", pool=POOL
)
def ingest_logins(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    sqs: SQSResource,
    postgres: PostgresResource,
    masking: MaskingResource,
    vault: VaultResource,
):
    install_redaction(context.log)
    keys = PiiKeys(masking.masking_key(), vault.vault_key())

    limits = DrainLimits(
        max_messages=config.max_messages,
        chunk_size=config.chunk_size,
        receivers=config.receivers,
        visibility_timeout=config.visibility_timeout,
        build_processes=config.build_processes,
        batching_window=config.batching_window_seconds,
        idle_seconds=config.idle_seconds,
        max_seconds=config.max_seconds,
        max_bytes_in_hand=config.max_mib_in_hand * MIB,
        stall_timeout=config.stall_timeout,
        shutdown_timeout=config.shutdown_timeout,
        retention_days=RetentionPolicy.from_environment().rows,  # read as the run starts, not as the code loads
    )
    announced: list[bool] = []

    def log_progress(summary: DrainSummary) -> None:
        context.log.info(
            f"chunk {summary.chunks}: {summary.received} received, {summary.inserted} inserted, "
            f"{summary.duplicates} duplicates, {summary.quarantined} quarantined ({summary.rate:,.0f} msg/s)"
        )
        if not announced and _ends_soon(summary, limits):
            announced.append(True)
            context.instance.add_run_tags(context.run_id, {ENDING_TAG: "true"})
            context.log.info(f"near its bounds: tagged {ENDING_TAG}, so that the sensor starts the next run")

    try:
        with redacted_errors():
            summary = drain_until_interrupted(sqs, postgres, keys, limits, log_progress)
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt):  # cancelled, SIGTERM, Ctrl-C
        context.log.warning(
            "interrupted: stopped receiving; committed chunks were deleted, the rest is back in the queue"
        )
        raise
    context.log.info(f"drained {summary.received} messages in {summary.seconds:.1f}s")
    if summary.failed:
        errors = ", ".join(f"{name} x{n}" for name, n in summary.errors.items())
        context.log.warning(
            f"{summary.failed} message(s) failed alone ({errors}) and stay in the queue: redelivered, then "
            "moved to the dead-letter queue after the queue's maxReceiveCount (see `logins-pipeline redrive`)"
        )
    yield from _results(summary, _days_written(postgres, summary.seconds))


@dg.definitions
def defs() -> dg.Definitions:
    """The multi-asset only: the specs it is made of are not assets of their own (autoloading this module
    would find both, and fail on a duplicate asset key)."""
    return dg.Definitions(assets=[ingest_logins])
