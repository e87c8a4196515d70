"""`logins-pipeline redrive`: move dead-lettered messages back to the login queue once their cause is fixed.

Each group of up to 10 is received from the dead-letter queue, sent to the login queue, and only then deleted
from the dead-letter queue, so a crash in between leaves a copy in both queues, never in neither. The copies
carry their origin (first id and SentTimestamp, see core/origin.py), so the drain stores both as the same
message: once, with the date it was first sent. SQS's own StartMessageMoveTask is not used: LocalStack keeps
a moved message's id, but AWS is reported to give it a new one, which would make a message that was stored
before it was dead-lettered a new row.
"""

from dataclasses import dataclass

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.origin import ORIGIN_ATTRIBUTE, origin_of, with_origin
from logins_pipeline.drain.failpoints import failpoint
from logins_pipeline.resources.erased_users import message_user_hash
from logins_pipeline.resources.sqs import SQSResource

# A message is held only from its receive to its delete, milliseconds; if the redrive dies in between, it is
# back in the dead-letter queue this soon (and a second copy is harmless: both carry the same origin).
HOLD_SECONDS = 5


class NoDeadLetterQueue(Exception):
    pass


@dataclass
class RedriveResult:
    moved: int = 0  # sent back to the login queue
    left: int = 0  # still in the dead-letter queue: the send failed, or the delete after it (then in both)
    suppressed: int = 0  # of erased users (erasure.py): deleted from the dead-letter queue unread


def redrive(
    sqs: SQSResource, key: MaskingKey, max_messages: int = 100_000, suppressed: frozenset[str] = frozenset()
) -> RedriveResult:
    """`suppressed`: the hashes of erased users (suppressed_hashes), whose messages are deleted, not moved."""
    client = sqs.client()
    dlq_url = sqs.dead_letter_url(client)
    if dlq_url is None:
        raise NoDeadLetterQueue(f"{sqs.queue_url} has no redrive policy, so no dead-letter queue")
    result = RedriveResult()
    received = 0
    while received < max_messages:
        messages = sqs.receive(client, max_messages - received, HOLD_SECONDS, queue_url=dlq_url)
        if not messages:
            break
        received += len(messages)
        if suppressed:
            gone = [m for m in messages if message_user_hash(m.body, key) in suppressed]
            result.suppressed += len(gone) - sqs.delete(gone, client, queue_url=dlq_url)
            messages = [m for m in messages if m not in gone]
            if not messages:
                continue
        response = client.send_message_batch(
            QueueUrl=sqs.queue_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": m.body,
                    "MessageAttributes": {
                        ORIGIN_ATTRIBUTE: {"DataType": "String", "StringValue": origin_of(with_origin(m, key), key)}
                    },
                }
                for i, m in enumerate(messages)
            ],
        )
        sent = [messages[int(entry["Id"])] for entry in response.get("Successful", [])]
        failpoint("after_send")
        result.moved += len(sent)
        result.left += len(messages) - len(sent) + sqs.delete(sent, client, queue_url=dlq_url)
    return result
