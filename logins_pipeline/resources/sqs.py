"""SQS access built on dagster-aws's boto3 configuration (dagster-aws has no SQS resource of its own).

The endpoint comes from boto3's own AWS_ENDPOINT_URL_SQS when `endpoint_url` is not set, so the same
configuration talks to LocalStack locally and to real SQS in production.
"""

import functools
import json
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field

from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.origin import ORIGIN_ATTRIBUTE

SQS_BATCH = 10  # the most SQS returns, sends or deletes in one call
MAX_MESSAGE_BYTES = 1024 * 1024  # the largest body SQS accepts (since 2025): one receive may bring 10 MiB
Client = Any  # a boto3 SQS client: boto3 ships no types
T = TypeVar("T")
# A thread of receive_chunk asks whether the queue is dry after this many empty receives in a row.
EMPTY_RECEIVES_TO_DRY = 2
# AWS refuses receives with OverLimit while a standard queue has ~120,000 messages in flight (parallel runs
# holding full chunks can get there): the receiver pauses about this long, then tries again, until the deadline.
OVER_LIMIT, OVER_LIMIT_PAUSE = "OverLimit", 1.0
# A chunk stops filling after this long even while a backlog waits (the batching window, below, closes it
# sooner under a live stream).
FILL_SECONDS = 60
# A batch call may succeed with some entries failed; one failed through no fault of the caller (SenderFault false:
# InternalError, a throttled entry) is sent again, up to this many calls in all.
ENTRY_ATTEMPTS = 3
_SESSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=8)
def _session(
    profile_name: str | None,
    region_name: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
) -> boto3.session.Session:
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


@dataclass(frozen=True)
class ReceivedChunk:
    messages: list[ReceivedMessage]
    dry: bool  # the queue had nothing visible when the chunk ended: the run need not ask again


def _closes_on_time(messages: list[ReceivedMessage], opened: float | None, window: float) -> bool:
    """Whether a receive's answer closes its chunk on time: the chunk's first message came in `window`
    seconds ago or more, and this receive brought messages, none of which had waited longer than the window
    (by its SentTimestamp). A live stream the run keeps up with closes its chunks every window; a backlog
    (messages older than the window: the run is behind, and full chunks drain it fastest) fills them. An
    empty receive decides nothing: AWS answers some receives empty while a backlog waits, and the dry check
    ends a chunk whose queue is really empty."""
    if opened is None or not messages or time.monotonic() - opened < window:
        return False
    oldest_ms = min(m.sent_timestamp_ms for m in messages)
    return time.time() * 1000 - oldest_ms <= window * 1000


class _Budget:
    """How many messages, and bytes of bodies, a chunk still wants, shared by its receiving threads. A
    receive reserves room for as many of the largest bodies as it asks for, and gives back what its messages
    left unused: the chunk never holds more bytes than it may, whatever the bodies."""

    def __init__(self, left: int, bytes_left: int):
        self.left, self.bytes_left = left, bytes_left
        self._lock = threading.Lock()

    def take(self, most: int) -> int:
        with self._lock:
            taken = min(most, self.left, self.bytes_left // MAX_MESSAGE_BYTES)
            self.left -= taken
            self.bytes_left -= taken * MAX_MESSAGE_BYTES
            return taken

    def give_back(self, taken: int, messages: list[ReceivedMessage]) -> None:
        """What a receive that took `taken` did not use: it brought `messages`."""
        with self._lock:
            self.left += taken - len(messages)
            self.bytes_left += taken * MAX_MESSAGE_BYTES - sum(m.body_bytes for m in messages)


def chunks(items: list[T], size: int = SQS_BATCH) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SQSResource(ResourceWithBoto3Configuration):
    queue_url: str = Field(description="URL of the login queue (LOGINS_SQS_QUEUE_URL)")
    wait_time_seconds: int = Field(default=1, ge=0, le=20, description="Long-polling wait of each receive")
    visibility_timeout: int = Field(
        default=120, ge=1, description="Seconds a received message stays hidden while its chunk is processed"
    )

    def client(self) -> Client:
        """A new boto3 SQS client; make one per thread. Sessions are shared (a new one costs ~50 ms, most
        of an idle sensor tick) and locked, because creating clients from one session is not thread-safe."""
        session = _session(
            self.profile_name,
            self.region_name,
            self.aws_access_key_id,
            self.aws_secret_access_key,
            self.aws_session_token,
        )
        # Throttling and 5xx answers are retried by botocore's "standard" mode: exponential backoff with full
        # jitter, up to max_attempts calls in all (dagster-aws's default, 5), and a retry quota that stops
        # retrying when a client sees mostly failures. Not "adaptive": its client-side rate limiter slows a
        # client for a while after any throttle, and SQS standard queues throttle almost never.
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

    def queue_depth(self, client: Client | None = None) -> QueueDepth:
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

    def receive(
        self,
        client: Client,
        max_messages: int = SQS_BATCH,
        visibility_timeout: int | None = None,
        queue_url: str | None = None,
    ) -> list[ReceivedMessage]:
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

    def receive_chunk(
        self,
        limit: int,
        receivers: int,
        visibility_timeout: int | None = None,
        hold: Callable[[list[ReceivedMessage], float], object] = lambda messages, since: None,
        stop: threading.Event | None = None,
        window: float | None = None,
        max_bytes: int | None = None,
    ) -> "ReceivedChunk":
        """Up to `limit` messages with at most `max_bytes` of bodies (default: no bound but the count),
        received by `receivers` threads in parallel until the chunk is full, the queue is dry (see
        `_is_dry`), its batching `window` has passed (see `_closes_on_time`), the chunk has been filling for
        FILL_SECONDS, or `stop` is set.

        A short receive ends nothing: AWS answers a receive from a sample of its servers, so partial batches
        are normal while a backlog waits. The threads share the chunk's budget, so none idles while another
        still has messages to take. `hold(messages, since)` gets each receive's messages at once (`since`:
        the time.monotonic() before the call, from which their visibility timeout runs), so the heartbeat
        keeps them hidden while the rest of the chunk fills."""
        budget = _Budget(limit, limit * MAX_MESSAGE_BYTES if max_bytes is None else max_bytes)
        dry, closed, stop = threading.Event(), threading.Event(), stop or threading.Event()
        deadline = time.monotonic() + FILL_SECONDS
        opened: list[float] = []  # when the chunk's first message came in (time.monotonic())

        def receive_share() -> list[ReceivedMessage]:
            client, received, empties = self.client(), [], 0
            while not (dry.is_set() or closed.is_set() or stop.is_set()) and time.monotonic() < deadline:
                wanted = budget.take(SQS_BATCH)
                if not wanted:
                    break
                since = time.monotonic()
                try:
                    messages = self.receive(client, wanted, visibility_timeout)
                except ClientError as error:
                    budget.give_back(wanted, [])
                    if error.response.get("Error", {}).get("Code") != OVER_LIMIT:
                        raise
                    stop.wait(OVER_LIMIT_PAUSE * random.uniform(0.5, 1.5))
                    continue
                budget.give_back(wanted, messages)
                hold(messages, since)
                received += messages
                if messages and not opened:
                    opened.append(since)
                if window is not None and _closes_on_time(messages, opened[0] if opened else None, window):
                    closed.set()
                empties = 0 if messages else empties + 1
                if empties == EMPTY_RECEIVES_TO_DRY:
                    empties = 0  # if the queue is not dry after all, count afresh
                    if self._is_dry(client):
                        dry.set()
            return received

        with ThreadPoolExecutor(max_workers=receivers) as pool:
            shares = [pool.submit(receive_share) for _ in range(receivers)]
            messages = [m for share in shares for m in share.result()]
        return ReceivedChunk(messages, dry.is_set())

    def _is_dry(self, client: Client) -> bool:
        """Asked after EMPTY_RECEIVES_TO_DRY empty receives in a row by one thread. Empty long polls alone
        are not proof: false empties happen on AWS (a 5% rate gives three in a row once in 8,000 tries, and a
        100,000-message drain makes some 20,000 receives). The queue's visible count alone is not either: it
        is approximate, and lags on AWS. Both together end the chunk, and the run after it; a count that
        lags the other way (still > 0 when the queue is empty) costs empty polls until FILL_SECONDS."""
        return self.queue_depth(client).visible == 0

    def delete(
        self,
        messages: list[ReceivedMessage],
        client: Client | None = None,
        queue_url: str | None = None,
        after_group: Callable[[int, list[ReceivedMessage]], None] = lambda n, group: None,
        go_on: Callable[[], bool] = lambda: True,
    ) -> int:
        """DeleteMessageBatch in groups of 10 (entries that fail on the server's side sent again, ENTRY_ATTEMPTS
        calls in all); returns how many deletes failed or were not made (those messages will be redelivered
        after the visibility timeout, and their second write is a no-op).
        `after_group` gets each group once its call is answered, with its index in this call; a group is
        sent only while `go_on()` (a run that must stop by a deadline leaves the rest to be redelivered)."""
        client = client or self.client()
        failed = 0
        for n, group in enumerate(chunks(messages)):
            if not go_on():
                failed += len(group)
                continue
            failed += len(self._batch(client.delete_message_batch, queue_url, group, {}))
            after_group(n, group)
        return failed

    def change_visibility(
        self, messages: list[ReceivedMessage], seconds: int, client: Client | None = None
    ) -> list[tuple[ReceivedMessage, bool]]:
        """ChangeMessageVisibilityBatch in groups of 10: hide the messages for `seconds` more from now (0:
        visible at once); returns the changes that failed, each with whether the failure was the caller's
        (SenderFault: a receipt handle no longer valid, a message no longer in flight) or the server's, retried
        ENTRY_ATTEMPTS times."""
        client = client or self.client()
        failed = []
        for group in chunks(messages):
            failed += self._batch(client.change_message_visibility_batch, None, group, {"VisibilityTimeout": seconds})
        return failed

    def _batch(
        self, call: Callable[..., Any], queue_url: str | None, group: list[ReceivedMessage], extra: dict[str, Any]
    ) -> list[tuple[ReceivedMessage, bool]]:
        """One batch call on `group`'s receipt handles, its entries that fail on the server's side sent again;
        the entries that failed in the end, each with its SenderFault."""
        theirs: list[tuple[ReceivedMessage, bool]] = []  # failed by the caller's fault: not sent again
        for _ in range(ENTRY_ATTEMPTS):
            response = call(
                QueueUrl=queue_url or self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle, **extra} for i, m in enumerate(group)],
            )
            failed = [(group[int(f["Id"])], bool(f.get("SenderFault"))) for f in response.get("Failed", [])]
            theirs += [entry for entry in failed if entry[1]]
            group = [message for message, sender_fault in failed if not sender_fault]
            if not group:
                break
        return theirs + [(message, False) for message in group]

    def delete_all(
        self,
        messages: list[ReceivedMessage],
        workers: int,
        after_group: Callable[[int, list[ReceivedMessage]], None] = lambda n, group: None,
        go_on: Callable[[], bool] = lambda: True,
    ) -> int:
        """`delete` spread over `workers` threads (a client each); returns how many deletes failed or were
        not made. `after_group` is called from all of them at once: it must be thread-safe."""
        groups = chunks(messages, math.ceil(len(messages) / workers) or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(
                pool.map(lambda group: self.delete(group, self.client(), after_group=after_group, go_on=go_on), groups)
            )

    def send_bodies(self, bodies: list[str], client: Client | None = None) -> int:
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
            for group, group_failed in zip(groups, pool.map(send, groups), strict=True):
                failed += group_failed
                progress(len(group))
        return failed

    def dead_letter_url(self, client: Client) -> str | None:
        """The URL of the queue's dead-letter queue, from its redrive policy; None if it has none."""
        attributes = client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
        policy = attributes.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            return None
        arn = json.loads(policy)["deadLetterTargetArn"]  # arn:aws:sqs:region:account:name
        _, _, _, _, account, name = arn.split(":", 5)
        return str(client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])

    def message_lifetime_seconds(self, client: Client) -> int:
        """The longest a message can live in the queues, from their attributes: the longest retention of the
        queue and its dead-letter queue, plus the queue's visibility timeout (a receive just before expiry)."""
        urls = [self.queue_url, *filter(None, [self.dead_letter_url(client)])]
        attributes = [
            client.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod", "VisibilityTimeout"])[
                "Attributes"
            ]
            for url in urls
        ]
        return max(int(a["MessageRetentionPeriod"]) for a in attributes) + int(attributes[0]["VisibilityTimeout"])

    def dead_letter_depth(self, client: Client) -> int | None:
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
