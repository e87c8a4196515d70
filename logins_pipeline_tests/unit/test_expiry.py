"""A login sent before the first day LOGINS_RETENTION_DAYS keeps is quarantined as `expired`, whatever its
body, and keeps only its size and keyed hash; a login of the first day kept is stored."""

from datetime import UTC, date, datetime

import pytest

from logins_pipeline.core.expiry import expired, first_kept_day, kept_from_ms
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import build_batch
from logins_pipeline_tests.unit.test_transform import KEY, body, message

FIRST_KEPT = date(2026, 11, 7)  # 30 days kept on 2026-12-06
MIDNIGHT_MS = int(datetime(2026, 11, 7, tzinfo=UTC).timestamp() * 1000)


def test_the_first_day_kept_counts_today():
    assert first_kept_day(date(2026, 12, 6), 30) == FIRST_KEPT
    assert first_kept_day(date(2026, 12, 6), 1) == date(2026, 12, 6)
    assert first_kept_day(date(2026, 12, 6), None) is None


@pytest.mark.parametrize(
    "sent_ms, is_expired",
    [
        (MIDNIGHT_MS - 1, True),  # the last millisecond of the day before the first kept
        (MIDNIGHT_MS, False),
        (MIDNIGHT_MS + 86_400_000 - 1, False),
        (0, True),
    ],
)
def test_a_login_expires_when_sent_before_the_first_day_kept(sent_ms, is_expired):
    assert kept_from_ms(FIRST_KEPT) == MIDNIGHT_MS
    assert expired(sent_ms, kept_from_ms(FIRST_KEPT)) is is_expired


def test_nothing_expires_without_retention():
    assert kept_from_ms(None) is None
    assert not expired(0, None)


def test_an_expired_login_is_quarantined_with_only_its_size_and_hash():
    late, kept = message(body(), MIDNIGHT_MS - 1), message(body(), MIDNIGHT_MS)
    not_json = message("not json", MIDNIGHT_MS - 1)

    batch = build_batch([late, kept, not_json], PiiKeys(KEY), FIRST_KEPT)

    assert batch.rows["message_id"].tolist() == [kept.message_id]
    assert {r.message_id: r.reason for r in batch.rejections} == {
        late.message_id: "expired",
        not_json.message_id: "expired",
    }
    rejection = batch.rejections[0]
    assert rejection.masked_body is None and rejection.body_bytes == len(late.body)
    assert rejection.detail == "sent before 2026-11-07, the first day LOGINS_RETENTION_DAYS keeps"
    assert build_batch([late], PiiKeys(KEY)).rejections == []  # no retention: stored
