"""A login that arrives after its day has passed LOGINS_RETENTION_DAYS (here redriven from the dead-letter
queue with its first SentTimestamp, 40 days back) is quarantined as `expired` by a Dagster run that reads the
setting as it starts: not stored in a day's partition nor in the default one, and `reveal` finds nothing (its
originals were never stored, not removed). A login of the first day kept is stored."""

import json
import uuid
from datetime import timedelta

import psycopg
import pytest

from logins_pipeline import settings
from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.origin import ORIGIN_ATTRIBUTE, origin_of
from logins_pipeline.privacy.reveal import NotInVault, RemovedByRetention, reveal
from logins_pipeline_tests.integration.test_partitions import TODAY, day_ms

pytestmark = pytest.mark.integration

BODY = json.dumps({"user_id": "u", "app_version": "1.2.3", "device_type": "ios", "ip": "10.9.8.7", "device_id": "d"})


def send_redriven(pipeline, days_ago: int) -> str:
    """One login sent again by a redrive, its origin dated `days_ago` days back; its (first) message id."""
    first = ReceivedMessage(str(uuid.uuid4()), "-", day_ms(TODAY - timedelta(days=days_ago), 60), 1, BODY)
    attribute = {"DataType": "String", "StringValue": origin_of(first, pipeline.key)}
    pipeline.sqs.client().send_message(
        QueueUrl=pipeline.sqs.queue_url, MessageBody=BODY, MessageAttributes={ORIGIN_ATTRIBUTE: attribute}
    )
    return first.message_id


def test_a_late_login_past_retention_is_quarantined_as_expired(pipeline, instance, monkeypatch):
    monkeypatch.setenv(settings.RETENTION_DAYS, "30")  # the first day kept: today - 29
    expired, kept = send_redriven(pipeline, 40), send_redriven(pipeline, 29)
    pipeline.seed([BODY])

    outcome = run_ingest_job(instance=instance)

    assert outcome.success, outcome.error
    assert outcome.reasons == {"expired": 1}
    assert outcome.metadata["inserted"] == 2
    assert pipeline.query("SELECT message_id, reason, masked_body FROM login_quarantine") == [
        (expired, "expired", None)
    ]
    assert pipeline.scalar("SELECT count(*) FROM user_logins WHERE message_id = %s", (expired,)) == 0
    assert pipeline.query("SELECT message_id FROM user_logins_default") == [(kept,)]  # a day with no partition yet
    assert pipeline.scalar("SELECT create_date FROM user_logins WHERE message_id = %s", (kept,)) == TODAY - timedelta(
        29
    )
    with (
        psycopg.connect(pipeline.env[settings.PII_READER_DSN], autocommit=True) as reader,
        pytest.raises(NotInVault) as missing,
    ):
        reveal(reader, pipeline.vault_key, expired, "expiry test")
    assert not isinstance(missing.value, RemovedByRetention)  # never stored, so nothing was removed
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.reveal_audit WHERE message_id = %s", (expired,)) == 1
