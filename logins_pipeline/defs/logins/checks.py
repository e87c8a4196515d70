"""Asset checks that guard public.user_logins."""

import dagster as dg

from logins_pipeline.core.masking import TOKEN_PATTERN
from logins_pipeline.defs.logins import assets
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations, scalar

# name -> (description, SQL counting the offending rows)
TABLE_CHECKS = {
    "no_null_user_id": (
        "Every row has a user_id.",
        "SELECT count(*) FROM public.user_logins WHERE user_id IS NULL",
    ),
    "masked_values_are_tokens": (
        "Every row this pipeline wrote holds HMAC tokens (64 hex characters), never a raw value.",
        "SELECT count(*) FROM public.user_logins WHERE masking_key_id IS NOT NULL"
        f" AND (masked_ip !~ '{TOKEN_PATTERN}' OR masked_device_id !~ '{TOKEN_PATTERN}')",
    ),
    "message_ids_unique": (
        "No SQS message id appears twice (redelivery must be a no-op).",
        "SELECT count(message_id) - count(DISTINCT message_id) FROM public.user_logins",
    ),
}


# Blocking: a failure fails the run's check step, and the daily analytics downstream are not refreshed
# from a table that fails them (their automation waits for all_deps_blocking_checks_passed).
@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=assets.user_logins.key, description=text, blocking=True)
        for name, (text, _) in TABLE_CHECKS.items()
    ]
)
def user_logins_checks(postgres: PostgresResource):
    with postgres.connect() as conn:
        apply_migrations(conn)
        for name, (_, sql) in TABLE_CHECKS.items():
            offending = scalar(conn, sql)
            yield dg.AssetCheckResult(
                check_name=name,
                asset_key=assets.user_logins.key,
                passed=offending == 0,
                metadata={"offending_rows": offending},
            )
