"""The SQS server gone in the middle of a run, and a chunk slower than the visibility timeout. (Postgres
stopped mid-run, crashes, SIGTERM and poison messages are in test_faults.py.)"""

import threading

import dagster as dg
import pytest

from logins_pipeline import settings
from logins_pipeline.drain.failpoints import VARIABLE as FAILPOINT
from logins_pipeline.drain.ingest import DrainLimits, drain
from logins_pipeline.local.services import LocalSQS, free_port
from logins_pipeline_tests.chaos import CHUNK, Count, Messages, count, finish, run, stored, taken_while, wait_until
from logins_pipeline_tests.harness import new_pipeline
from logins_pipeline_tests.integration.test_sensor import evaluate

pytestmark = pytest.mark.integration


@pytest.fixture
def own_sqs(tmp_path):
    server = LocalSQS(tmp_path / "own-sqs", free_port())
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
def test_sqs_server_stopped_mid_run(local_services, own_sqs, tmp_path):
    environment, env = local_services
    pipeline = new_pipeline(
        environment.postgres, {**env, settings.AWS_ENDPOINT_URL_SQS: own_sqs.endpoint_url}, tmp_path
    )
    messages = Messages.generate(10 * CHUNK)
    pipeline.seed(messages.bodies)
    child = run(pipeline, "after_commit:0.5", chunk_size=CHUNK, visibility_timeout=2)
    wait_until(lambda: stored(pipeline) >= CHUNK, "a chunk is stored")

    own_sqs.stop()

    assert "SQS failed: EndpointConnectionError" in finish(child, 1)
    assert stored(pipeline) % CHUNK == 0  # whole chunks only: each was one transaction
    assert pipeline.scalar("SELECT count(*) - count(DISTINCT user_id) FROM user_logins") == 0
    result = evaluate(dg.DagsterInstance.ephemeral(), pipeline.sqs)
    assert not result.run_requests
    assert "cannot read the queue depth: Could not connect to the endpoint URL" in result.skip_reason.skip_message


def test_a_chunk_slower_than_the_visibility_timeout_stays_invisible(pipeline, monkeypatch):
    """The chunk sleeps 6 s between receive and COMMIT with a 2 s visibility timeout; meanwhile another
    consumer polls the queue and must get nothing: the heartbeat keeps renewing the timeout."""
    messages = Messages.generate(10)
    pipeline.seed(messages.bodies)
    monkeypatch.setenv(FAILPOINT, "after_receive:6")
    drained = threading.Thread(
        target=drain, args=(pipeline.sqs, pipeline.postgres, pipeline.keys, DrainLimits(visibility_timeout=2))
    )
    drained.start()
    wait_until(lambda: pipeline.sqs.queue_depth().in_flight == 10, "the drain holds the messages")
    taken = taken_while(drained.is_alive, pipeline)
    drained.join()
    assert taken == []
    assert count(pipeline, messages) == Count()
