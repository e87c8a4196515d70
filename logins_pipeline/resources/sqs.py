"""SQS access built on dagster-aws's boto3 configuration (dagster-aws has no SQS resource of its own).

The endpoint comes from boto3's own AWS_ENDPOINT_URL_SQS when `endpoint_url` is not set, so the same
configuration talks to LocalStack locally and to real SQS in production.
"""

import functools
import json
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from botocore.config import Config
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.origin import ORIGIN_ATTRIBUTE
from logins_pipeline.failpoints import failpoint

SQS_BATCH = 10  # the most SQS returns, sends or deletes in one call
_SESSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _session(profile_name, region_name, access_key_id, secret_access_key, session_token) -> boto3.session.Session:
    return boto3.session.Session(
        profile_name=profile_name,
        region_name=region_name,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
    )


@dataclass(frozen=True)
class QueueDepth:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def chunks(items: list, size: int = SQS_BATCH) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SQSResource(ResourceWithBoto3Configuration):
    queue_url: str = Field(description="URL of the login queue (LOGINS_SQS_QUEUE_URL)")
    wait_time_seconds: int = Field(default=1, ge=0, le=20, description="Long-polling wait of each receive")
    visibility_timeout: int = Field(
        default=120, ge=1, description="Seconds a received message stays hidden while its chunk is processed"
    )

    def client(self):
        """A new boto3 SQS client; make one per thread. Sessions are shared (a new one costs ~50 ms, most
        of an idle sensor tick) and locked, because creating clients from one session is not thread-safe."""
        session = _session(
            self.profile_name, self.region_name, self.aws_access_key_id, self.aws_secret_access_key,
            self.aws_session_token,
        )
        config = Config(
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=5,
            read_timeout=self.wait_time_seconds + 10,
            max_pool_connections=32,
        )
        with _SESSION_LOCK:
            return session.client(
                "sqs", endpoint_url=self.endpoint_url, use_ssl=self.use_ssl, verify=self.verify, config=config
            )

    def queue_depth(self, client=None) -> QueueDepth:
        attributes = (client or self.client()).get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return QueueDepth(
            visible=int(attributes["ApproximateNumberOfMessages"]),
            in_flight=int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            delayed=int(attributes["ApproximateNumberOfMessagesDelayed"]),
        )

    def receive(self, client, max_messages: int = SQS_BATCH, visibility_timeout: int | None = None,
                queue_url: str | None = None) -> list[ReceivedMessage]:
        """One ReceiveMessage call (of this queue, or of `queue_url`), hiding the messages for
        `visibility_timeout` seconds (default: the resource's)."""
        response = client.receive_message(
            QueueUrl=queue_url or self.queue_url,
            MaxNumberOfMessages=max(1, min(SQS_BATCH, max_messages)),
            WaitTimeSeconds=self.wait_time_seconds,
            VisibilityTimeout=visibility_timeout or self.visibility_timeout,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=[ORIGIN_ATTRIBUTE],
        )
        return [
            ReceivedMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                sent_timestamp_ms=int(m["Attributes"]["SentTimestamp"]),
                receive_count=int(m["Attributes"].get("ApproximateReceiveCount", 1)),
                body=m["Body"],
                origin=m.get("MessageAttributes", {}).get(ORIGIN_ATTRIBUTE, {}).get("StringValue"),
            )
            for m in response.get("Messages", [])
        ]

    def receive_chunk(self, limit: int, receivers: int, visibility_timeout: int | None = None) -> list[ReceivedMessage]:
        """Up to `limit` messages, received by `receivers` threads in parallel, each until its share is
        full or a receive comes back short (the queue is running dry: process what we have; the caller
        stops when a whole chunk comes back empty)."""
        shares = [limit // receivers + (i < limit % receivers) for i in range(receivers)]  # sums to limit

        def drain_share(share: int) -> list[ReceivedMessage]:
            client, received = self.client(), []
            while len(received) < share:
                wanted = min(SQS_BATCH, share - len(received))
                messages = self.receive(client, wanted, visibility_timeout)
                received.extend(messages)
                if len(messages) < wanted:
                    break
            return received

        with ThreadPoolExecutor(max_workers=receivers) as pool:
            return [m for share_messages in pool.map(drain_share, filter(None, shares)) for m in share_messages]

    def delete(self, messages: list[ReceivedMessage], client=None, queue_url: str | None = None) -> int:
        """DeleteMessageBatch in groups of 10; returns how many deletes failed (those messages will be
        redelivered after the visibility timeout, and their second write is a no-op)."""
        client = client or self.client()
        failed = 0
        for group in chunks(messages):
            response = client.delete_message_batch(
                QueueUrl=queue_url or self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(group)],
            )
            failed += len(response.get("Failed", []))
            failpoint("mid_delete")
        return failed

    def change_visibility(self, messages: list[ReceivedMessage], seconds: int, client=None) -> int:
        """ChangeMessageVisibilityBatch in groups of 10: hide the messages for `seconds` more from now (0:
        visible at once); returns how many changes failed (a message already deleted, say)."""
        client = client or self.client()
        failed = 0
        for group in chunks(messages):
            response = client.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(group)
                ],
            )
            failed += len(response.get("Failed", []))
        return failed

    def delete_all(self, messages: list[ReceivedMessage], workers: int) -> int:
        """`delete` spread over `workers` threads (a client each); returns how many deletes failed."""
        groups = chunks(messages, math.ceil(len(messages) / workers) or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(lambda group: self.delete(group, self.client()), groups))

    def send_bodies(self, bodies: list[str], client=None) -> int:
        """SendMessageBatch in groups of 10; returns how many sends failed."""
        client = client or self.client()
        failed = 0
        for group in chunks(bodies):
            response = client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(group)],
            )
            failed += len(response.get("Failed", []))
        return failed

    def send_all(self, bodies: list[str], senders: int = 4, progress: Callable[[int], None] = lambda n: None) -> int:
        """Send every body with `senders` parallel threads (a client each); returns how many failed.
        `progress` is called with the number of messages of each finished group of 100."""
        local = threading.local()

        def send(group: list[str]) -> int:
            if not hasattr(local, "client"):
                local.client = self.client()
            return self.send_bodies(group, local.client)

        failed = 0
        groups = chunks(bodies, 100)
        with ThreadPoolExecutor(max_workers=senders) as pool:
            for group, group_failed in zip(groups, pool.map(send, groups)):
                failed += group_failed
                progress(len(group))
        return failed

    def dead_letter_url(self, client) -> str | None:
        """The URL of the queue's dead-letter queue, from its redrive policy; None if it has none."""
        attributes = client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            return None
        arn = json.loads(policy)["deadLetterTargetArn"]  # arn:aws:sqs:region:account:name
        _, _, _, _, account, name = arn.split(":", 5)
        return client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]

    def dead_letter_depth(self, client) -> int | None:
        url = self.dead_letter_url(client)
        if url is None:
            return None
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def purge(self) -> None:
        """Delete every message of the queue and of its dead-letter queue (development resets)."""
        client = self.client()
        for url in filter(None, (self.queue_url, self.dead_letter_url(client))):
            client.purge_queue(QueueUrl=url)
