"""A run holds at most its configured bytes of message bodies, whatever their size: chunks close early at
their share of it (DrainLimits.chunk_bytes), so big bodies make more, smaller chunks, not an OOM kill."""

import json
import threading

import pytest

from logins_pipeline.drain.ingest import MIB, DrainLimits, drain
from logins_pipeline.drain.visibility import VisibilityHeartbeat
from logins_pipeline_tests.chaos import Messages

pytestmark = pytest.mark.integration

BODY_BYTES = 250 * 1024  # near 256 KiB, the most LocalStack (and our quarantine) takes
COUNT = 160  # 39 MiB of bodies: more than the budget below


class HeldBytes:
    """The bytes of the bodies a run holds (received, not yet deleted: in the heartbeat), and their peak."""

    def __init__(self, monkeypatch):
        self.held: dict[str, int] = {}
        self.peak = 0
        self._lock = threading.Lock()
        hold, release = VisibilityHeartbeat.hold, VisibilityHeartbeat.release

        def holding(heartbeat, messages, *args, **kwargs):
            with self._lock:
                self.held.update((m.receipt_handle, m.body_bytes) for m in messages)
                self.peak = max(self.peak, sum(self.held.values()))
            return hold(heartbeat, messages, *args, **kwargs)

        def releasing(heartbeat, messages, *args, **kwargs):
            with self._lock:
                for m in messages:
                    self.held.pop(m.receipt_handle, None)
            return release(heartbeat, messages, *args, **kwargs)

        monkeypatch.setattr(VisibilityHeartbeat, "hold", holding)
        monkeypatch.setattr(VisibilityHeartbeat, "release", releasing)


def big_bodies() -> list[str]:
    bodies = []
    for event in map(json.loads, Messages.generate(COUNT).bodies):
        padding = BODY_BYTES - len(json.dumps({**event, "pad": ""}))
        bodies.append(json.dumps({**event, "pad": "x" * padding}))
    return bodies


def test_a_run_never_holds_more_bytes_than_its_budget(pipeline, monkeypatch):
    client = pipeline.sqs.client()
    for body in big_bodies():  # one by one: ten of them are over a batch's payload limit
        client.send_message(QueueUrl=pipeline.sqs.queue_url, MessageBody=body)
    held = HeldBytes(monkeypatch)
    limits = DrainLimits(build_processes=0, max_bytes_in_hand=30 * MIB, receivers=2)  # 10 MiB a chunk

    summary = drain(pipeline.sqs, pipeline.postgres, pipeline.keys, limits)

    assert (summary.received, summary.inserted, summary.quarantined) == (COUNT, COUNT * 9 // 10, COUNT // 10)
    assert pipeline.left_in_queues() == 0
    assert 0 < held.peak <= limits.max_bytes_in_hand, held.peak / MIB
    assert summary.chunks >= COUNT * BODY_BYTES / limits.chunk_bytes  # each chunk at most its share
    assert held.held == {}
