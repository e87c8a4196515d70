"""Send logins dated earlier days: how `seed --days N` makes a sample that spans several days.

SQS stamps SentTimestamp when a message arrives, and create_date is its UTC day. The one way to a message
dated otherwise is the signed LoginsOrigin attribute that `redrive` sets (core/origin.py): the drain stores
such a message under the id and timestamp it names, as it would a replayed one. Signing needs the masking
key, so only the pipeline's side can do it: a development convenience for demos and tests, not something a
producer could do.
"""

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.origin import ORIGIN_ATTRIBUTE, origin_of
from logins_pipeline.resources.sqs import SQSResource, chunks


def dated_origin(key: MaskingKey, sent: datetime) -> str:
    """A LoginsOrigin for a new message id sent at `sent`."""
    return origin_of(ReceivedMessage(str(uuid.uuid4()), "", int(sent.timestamp() * 1000), 1, ""), key)


def send_dated(
    sqs: SQSResource,
    key: MaskingKey,
    bodies: list[str],
    days_ago: list[int],
    now: datetime,
    senders: int = 4,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Send body i as if sent days_ago[i] days before `now`; returns how many sends failed."""
    entries = [(body, dated_origin(key, now - timedelta(days=ago))) for body, ago in zip(bodies, days_ago, strict=True)]
    local = threading.local()  # a client per sender thread

    def send(group: list[tuple[str, str]]) -> int:
        if not hasattr(local, "client"):
            local.client = sqs.client()
        response = local.client.send_message_batch(
            QueueUrl=sqs.queue_url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": body,
                    "MessageAttributes": {ORIGIN_ATTRIBUTE: {"DataType": "String", "StringValue": origin}},
                }
                for i, (body, origin) in enumerate(group)
            ],
        )
        progress(len(group))
        return len(response.get("Failed", []))

    with ThreadPoolExecutor(max_workers=senders) as pool:
        return sum(pool.map(send, chunks(entries)))
