"""The whole hostile-message corpus through the real SQS server, the real job and the real Postgres."""

import time
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from logins_pipeline import settings
from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline_tests.corpus import load_corpus, pii_values
from logins_pipeline_tests.harness import sqs_resource

pytestmark = pytest.mark.integration

CORPUS = load_corpus()
VISIBILITY = 6  # seconds


def send(client, queue_url: str, body: str) -> str | None:
    """The MessageId, or None if the server refuses the body."""
    try:
        return client.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"]
    except ClientError:
        return None


@pytest.mark.parametrize("aws_like_sqs", [False, True], ids=["localstack", "aws-like"])
def test_every_corpus_message_ends_as_a_row_or_with_its_reason(pipeline, instance, request, monkeypatch, aws_like_sqs):
    sent, client = {}, sqs_resource(pipeline.env, max_attempts=1).client()
    for case in CORPUS:
        message_id = send(client, pipeline.sqs.queue_url, case.body)
        assert (message_id is None) == case.sqs_refuses, f"{case.name}: the server's verdict differs from the corpus"
        if message_id is not None:
            sent[message_id] = case
    if aws_like_sqs:  # the runs call SQS through the AWS-behaviour proxy (AWS_LIKE)
        monkeypatch.setenv(settings.AWS_ENDPOINT_URL_SQS, request.getfixturevalue("aws_like").endpoint_url)

    outcomes = [run_ingest_job(instance=instance, chunk_size=40, visibility_timeout=VISIBILITY)]
    while aws_like_sqs and pipeline.left_in_queues() and len(outcomes) < 10:
        time.sleep(VISIBILITY)  # a receive whose answer was lost hid its messages until the timeout
        outcomes.append(run_ingest_job(instance=instance, chunk_size=40, visibility_timeout=VISIBILITY))

    assert [o.error for o in outcomes if not o.success] == []
    m = {
        key: sum(o.metadata[key] for o in outcomes)
        for key in ("received", "inserted", "duplicates_skipped", "quarantined", "failed_left_in_queue")
    }
    assert m["received"] == m["inserted"] + m["duplicates_skipped"] + m["quarantined"]
    assert m["received"] - m["duplicates_skipped"] == len(sent)
    assert m["failed_left_in_queue"] == 0
    assert pipeline.left_in_queues() == 0
    rows = {message_id for (message_id,) in pipeline.query("SELECT message_id FROM user_logins")}
    reasons = dict(pipeline.query("SELECT message_id, reason FROM login_quarantine"))
    got = {message_id: "row" if message_id in rows else reasons.get(message_id, "nothing") for message_id in sent}
    assert {case.name: got[message_id] for message_id, case in sent.items() if got[message_id] != case.expect} == {}
    assert len(rows) + len(reasons) == len(sent)
    assert sum((Counter(o.reasons) for o in outcomes), Counter()) == Counter(reasons.values())

    stored = pipeline.query("SELECT detail, coalesce(masked_body, '') FROM login_quarantine") + pipeline.query(
        "SELECT user_id, device_type, masked_ip, masked_device_id, coalesce(locale, '') FROM user_logins"
    )
    text = "\n".join("\n".join(row) for row in stored)
    assert [value for value in pii_values(CORPUS) if value in text] == []
