"""The drain against SQS behaving as AWS does (aws_like_sqs.py in front of the real local server): partial
receives, false empties, latency, retryable errors. The fault trials under the same behaviour are rows of
test_faults.py; the figures (rates, calls per message) are `make bench`'s."""

import json
import threading
import time

import httpx
import pytest

from logins_pipeline.drain.failpoints import VARIABLE as FAILPOINT
from logins_pipeline.drain.ingest import DrainLimits, ServiceFailed, drain
from logins_pipeline.drain.pipeline import MIN_MESSAGES_FOR_A_WORKER
from logins_pipeline_tests.chaos import Count, Messages, count, recover, stored, taken_while, wait_until
from logins_pipeline_tests.conftest import sample_events
from logins_pipeline_tests.harness import sqs_resource

pytestmark = pytest.mark.integration


def through(pipeline, proxy, **settings):
    """The pipeline's SQS resource, calling the queue through the proxy."""
    return sqs_resource(pipeline.env, endpoint_url=proxy.endpoint_url, **settings)


def drain_through(pipeline, proxy, limits: DrainLimits, **settings):
    return drain(through(pipeline, proxy, **settings), pipeline.postgres, pipeline.keys, limits)


def test_the_proxy_speaks_both_protocols_and_applies_its_knobs(pipeline, aws_like):
    aws_like.configure(latency=0, receive="1", false_empty=0, error_rate=0)
    pipeline.seed([json.dumps({"n": i}) for i in range(5)])
    sqs = through(pipeline, aws_like)
    assert len(sqs.receive(sqs.client(), 10)) == 1  # JSON protocol, a receive lowered to 1 message

    def query(action: str, **params) -> httpx.Response:
        form = {"Action": action, "Version": "2012-11-05", "QueueUrl": pipeline.sqs.queue_url, **params}
        return httpx.post(aws_like.endpoint_url, data=form, timeout=10)

    answer = query("ReceiveMessage", MaxNumberOfMessages="10")
    assert answer.status_code == 200 and answer.text.count("<Message>") == 1  # query protocol, lowered too
    aws_like.configure(false_empty=1.0)
    assert "<ReceiveMessageResult/>" in query("ReceiveMessage").text
    aws_like.configure(false_empty=0, error_rate=1.0, seed=3)
    assert {query("GetQueueAttributes").status_code for _ in range(12)} == {400, 500}
    calls = aws_like.calls()
    assert calls["by_action"] == {"ReceiveMessage": 3, "GetQueueAttributes": 12}
    assert (calls["false_empties"], calls["receive_messages"], sum(calls["errors"].values())) == (1, 2, 12)


def test_chunks_stay_full_while_a_backlog_waits(pipeline, aws_like):
    """Receives of 1..10 at random, 5% false empties and 2% errors: every chunk but the last is full, one run
    takes the whole backlog, and a steady drain renews no visibility (nothing comes near its timeout)."""
    messages = Messages.generate(2_000)
    assert pipeline.sqs.send_all(messages.bodies) == 0

    summary = drain_through(pipeline, aws_like, DrainLimits(chunk_size=600, receivers=4, build_processes=0))

    assert summary.chunks == 4  # 600, 600, 600 and the rest
    assert "ChangeMessageVisibilityBatch" not in aws_like.calls()["by_action"]
    left = count(pipeline, messages)  # a receive whose answer was lost left its messages hidden, in the queue
    assert (left.duplicated, left.lost) == (0, left.left) and summary.received == 2_000 - left.left


def test_a_backlog_fills_its_chunks_however_short_the_batching_window(pipeline, aws_like):
    """The window closes a chunk only while the run keeps up with the queue: what a backlog hands over has
    waited longer than the window, so its chunks stay full (each takes seconds to fill here, 10x the window)."""
    aws_like.configure(error_rate=0)
    messages = Messages.generate(1_000)
    assert pipeline.sqs.send_all(messages.bodies) == 0

    limits = DrainLimits(chunk_size=300, receivers=2, build_processes=0, batching_window=0.2)
    summary = drain_through(pipeline, aws_like, limits)

    assert (summary.received, summary.chunks) == (1_000, 4)  # 300, 300, 300 and 100
    assert count(pipeline, messages) == Count()


def test_false_empties_do_not_end_a_run_and_an_empty_queue_ends_it_in_seconds(pipeline, aws_like):
    aws_like.configure(false_empty=0.3, error_rate=0)
    messages = Messages.generate(300)
    pipeline.seed(messages.bodies)

    summary = drain_through(pipeline, aws_like, DrainLimits(chunk_size=50, receivers=1, build_processes=0))

    assert (summary.received, summary.chunks) == (300, 6)
    assert count(pipeline, messages) == Count()
    started = time.monotonic()
    assert drain_through(pipeline, aws_like, DrainLimits(receivers=4)).received == 0
    assert time.monotonic() - started < 10  # two empty 1 s long polls per receiver, then the queue's count


@pytest.mark.slow
def test_the_heartbeat_keeps_the_most_a_run_holds_hidden_at_50ms(pipeline, aws_like, monkeypatch):
    """A run holds at most (build workers + 2) chunks for long: one being stored, one building per worker, one
    received ahead (a chunk is stored as soon as it is built, and released as it is deleted; it takes
    builds slower than receives to hold that many). Each worker's first build here waits 36 s, so the run
    holds all of them past a 20 s visibility timeout: every message must be renewed, at 50 ms a call,
    while another consumer polls the queue and must get none. (The timeout is short for a test: the
    local server shares two cores with the run and, in a loaded CI, with more; 12 s proved too short with
    three test suites at once.)"""
    chunk, workers = MIN_MESSAGES_FOR_A_WORKER, 2
    most = (workers + 2) * chunk
    messages = Messages.generate(most)
    assert pipeline.sqs.send_all(messages.bodies) == 0
    aws_like.configure(latency=0.05, error_rate=0)
    monkeypatch.setenv(FAILPOINT, "after_build@1:36")
    limits = DrainLimits(chunk_size=chunk, receivers=4, build_processes=workers, visibility_timeout=20)
    drained = threading.Thread(target=drain_through, args=(pipeline, aws_like, limits))
    drained.start()
    depths = []

    def nothing_visible() -> bool:
        depths.append(pipeline.sqs.queue_depth())
        return depths[-1].visible == 0

    wait_until(nothing_visible, "the run has received every message")
    taken = taken_while(drained.is_alive, pipeline)
    drained.join()

    assert depths[-1].in_flight == most
    assert aws_like.calls()["by_action"]["ChangeMessageVisibilityBatch"] >= most // 10
    assert taken == []
    assert count(pipeline, messages) == Count()


def test_the_sample_ends_as_99_rows_and_1_quarantined_through_aws_like_sqs(pipeline, aws_like):
    pipeline.seed([json.dumps(event) for event in sample_events()])
    sqs = through(pipeline, aws_like, visibility_timeout=5)
    deadline = time.monotonic() + 60
    while pipeline.left_in_queues() and time.monotonic() < deadline:  # a lost receive answer: 5 s hidden
        drain(sqs, pipeline.postgres, pipeline.keys, DrainLimits(chunk_size=30))
        time.sleep(0.5)
    assert pipeline.scalar("SELECT count(DISTINCT message_id) FROM user_logins") == 99
    assert pipeline.scalar("SELECT count(*) FROM user_logins") == 99
    assert pipeline.query("SELECT reason FROM login_quarantine") == [("missing_field",)]
    assert pipeline.left_in_queues() == 0


def test_over_limit_pauses_a_receiver_instead_of_failing_the_run(pipeline, aws_like):
    """AWS refuses receives with OverLimit while the queue has ~120,000 messages in flight (four runs at
    their defaults can hold that many); the SDK does not retry it."""
    aws_like.configure(over_limit=0.2, error_rate=0)
    messages = Messages.generate(200)
    pipeline.seed(messages.bodies)

    summary = drain_through(pipeline, aws_like, DrainLimits(chunk_size=100, receivers=2, build_processes=0))

    assert aws_like.calls()["errors"]["over limit"] > 0
    assert summary.received == 200
    assert count(pipeline, messages) == Count()


def test_errors_that_outlive_the_retries_fail_the_run_and_lose_nothing(pipeline, aws_like, monkeypatch):
    """Every call fails once the first chunk is stored: the SDK's retries (5 attempts, with backoff) run
    out, the run fails with the SQS error, nothing uncommitted was deleted, and a later run stores the rest
    exactly once."""
    aws_like.configure(error_rate=0)
    messages = Messages.generate(200)
    pipeline.seed(messages.bodies)
    monkeypatch.setenv(FAILPOINT, "after_commit:0.5")
    failures = []

    def run() -> None:
        try:
            drain_through(pipeline, aws_like, DrainLimits(chunk_size=20, receivers=1, visibility_timeout=10))
        except ServiceFailed as error:
            failures.append(str(error))

    drained = threading.Thread(target=run)
    drained.start()
    wait_until(lambda: stored(pipeline) >= 20, "a chunk is stored")
    aws_like.configure(error_rate=1.0)
    drained.join()
    assert failures and failures[0].startswith("SQS failed: ") and "injected" in failures[0]
    assert 20 <= stored(pipeline) < 200

    aws_like.configure(error_rate=0)
    monkeypatch.delenv(FAILPOINT)
    recover(pipeline, visibility=10)
    assert count(pipeline, messages) == Count()
