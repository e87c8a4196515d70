"""`status` shows the dead-letter queue; `redrive` moves its messages back, keeping each message's first id and
SentTimestamp, so the row is the one the message would have made the first time."""

import time

import pytest

from logins_pipeline_tests.chaos import Messages
from logins_pipeline_tests.harness import sqs_resource
from logins_pipeline_tests.integration.test_cli import cli

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_status_redrive_run(pipeline):
    client = sqs_resource(pipeline.env).client()
    dead_letters = pipeline.sqs.dead_letter_url(client)
    message_id = client.send_message(QueueUrl=dead_letters, MessageBody=Messages.generate(1).bodies[0])["MessageId"]
    [peeked] = client.receive_message(
        QueueUrl=dead_letters, VisibilityTimeout=0, MessageSystemAttributeNames=["SentTimestamp"]
    )["Messages"]
    assert "dead-letter queue: 1" in cli("status").stdout
    time.sleep(1.1)  # a copy sent now would have a later SentTimestamp

    redrive = cli("redrive")

    assert redrive.stdout.strip() == "moved 1 message(s) from the dead-letter queue back to the login queue"
    assert (pipeline.sqs.queue_depth().visible, pipeline.sqs.dead_letter_depth(client)) == (1, 0)
    assert "1 received, 1 inserted" in cli("run").stdout
    [(stored_id, sent_ms)] = pipeline.query(
        "SELECT message_id, (extract(epoch FROM sent_at) * 1000)::bigint FROM user_logins"
    )
    assert (stored_id, sent_ms) == (message_id, int(peeked["Attributes"]["SentTimestamp"]))


def test_redrive_without_a_dead_letter_queue_is_one_clear_line(pipeline):
    client = sqs_resource(pipeline.env).client()
    queue_url = client.create_queue(QueueName=pipeline.sqs.queue_url.rsplit("/", 1)[1] + "-plain")["QueueUrl"]
    result = cli("redrive", LOGINS_SQS_QUEUE_URL=queue_url)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("has no redrive policy, so no dead-letter queue")
