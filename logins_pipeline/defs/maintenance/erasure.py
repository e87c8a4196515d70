"""The erasure of one user (logins_pipeline/erasure.py) as a job, for operators who work in the UI.

Its run config names the user by their keyed hash (`logins-pipeline user-hash`), never by their id: Dagster
stores a run's config in its run storage, and an id there would outlive the erasure. The metadata carries
the audit row's id and counts only.
"""

import dagster as dg
from pydantic import Field

from logins_pipeline import settings
from logins_pipeline.erasure import Request, erase_user_by_hash
from logins_pipeline.resources.erased_users import rewrite_pending
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource
from logins_pipeline.resources.sqs import SQSResource


class EraseConfig(dg.Config):
    user_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="`logins-pipeline user-hash --user-id U` prints it")
    reason: str = Field(min_length=1, description="Why: the request's reference (audited)")
    requested_by: str = Field(min_length=1, description="Who asked (audited)")
    rewrite: bool = Field(default=False, description="Rewrite the affected files now, not at the next retention")


@dg.op(description="Erase one user everywhere, in one transaction, as a logins_erasure login (docs/privacy.md).")
def erase_user(
    context: dg.OpExecutionContext,
    config: EraseConfig,
    erasure_postgres: PostgresResource,
    masking: MaskingResource,
    sqs: SQSResource,
) -> dg.Output[None]:
    if not erasure_postgres.dsn:
        raise dg.Failure(f"{settings.ERASURE_DSN} is not set: an erasure runs as a logins_erasure login")
    keep_seconds = sqs.message_lifetime_seconds(sqs.client())
    request = Request(config.reason, config.requested_by, keep_seconds)
    with erasure_postgres.connect() as conn:
        erasure = erase_user_by_hash(conn, masking.masking_key(), config.user_hash, request)
        rewritten = rewrite_pending(conn) if config.rewrite else []
    context.log.info(f"erasure audited as erasure_audit row {erasure.audit_id}")
    return dg.Output(
        None,
        metadata={
            "audit_id": erasure.audit_id,
            "days_recomputed": len(erasure.days_recomputed),
            "suppressed_seconds": keep_seconds,
            "relations_rewritten": len(rewritten),
            **{f"rows_removed {table}": rows for table, rows in erasure.rows_removed.items()},
        },
    )


@dg.job(description="Erase one user (by keyed hash) everywhere; see docs/privacy.md.")
def erase_user_job() -> None:
    erase_user()
