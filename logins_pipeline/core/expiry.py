"""Which logins are past the rows' retention (LOGINS_RETENTION_DAYS): the days kept count today, in UTC.

The drain quarantines a login dated before the first day kept as `expired` rather than store it: its day's
partition is gone (or goes at the next retention pass), so the row would land in the default partition
only to be deleted, and the originals of a login past retention would reach the vault.
"""

from datetime import UTC, date, datetime, timedelta


def today_utc() -> date:
    return datetime.now(UTC).date()


def first_kept_day(today: date, days: int | None) -> date | None:
    """The oldest day kept when `days` days are kept, today included; None keeps every day."""
    return None if days is None else today - timedelta(days=days - 1)


def kept_from_ms(first_kept: date | None) -> int | None:
    """The first millisecond (since the epoch, UTC) of `first_kept`; None keeps every login."""
    if first_kept is None:
        return None
    return int(datetime(first_kept.year, first_kept.month, first_kept.day, tzinfo=UTC).timestamp() * 1000)


def expired(sent_timestamp_ms: int, kept_from: int | None) -> bool:
    """Whether a login first sent at `sent_timestamp_ms` (its create_date's clock) is dated before the
    first day kept (`kept_from`, from kept_from_ms)."""
    return kept_from is not None and sent_timestamp_ms < kept_from
