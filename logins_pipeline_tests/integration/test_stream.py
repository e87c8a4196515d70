"""A live stream through a run in-process: chunks close on time, not only on size, the run keeps draining
while logins arrive, and its send -> COMMIT delay is recorded and checked. The delay figures at 100 and
1,000 logins a second, through the sensor and the daemon, are `make bench`'s (benchmarks/stream_bench.py)."""

import json
import threading
import time

import dagster as dg
import pytest

from logins_pipeline.cli.run import run_ingest_job
from logins_pipeline.definitions import defs
from logins_pipeline.defs.logins.assets import IngestConfig, ingest_logins, raw_login_messages
from logins_pipeline.defs.logins.send_to_commit import SendToCommitConfig, send_to_commit_p95
from logins_pipeline_tests.chaos import Count, Messages, count
from logins_pipeline_tests.conftest import sample_events
from logins_pipeline_tests.stream import SteadyStream

pytestmark = pytest.mark.integration

RATE, SECONDS, WINDOW = 20, 24, 2.0


@pytest.mark.slow
def test_a_trickle_is_committed_in_chunks_closed_by_the_batching_window(pipeline, instance):
    """20 logins a second for 24 s, into a run that started on an empty queue. One receiver, so that its
    1 s long polls never come back empty twice in a row and the queue never looks dry: without the window
    the chunk would close only after FILL_SECONDS (60 s), holding the whole stream. With a 2 s window it
    closes every 2-3 s. The run waits for the stream and drains all of it (idle_seconds)."""
    messages = Messages.generate(RATE * SECONDS)
    config = IngestConfig(
        chunk_size=10_000, receivers=1, build_processes=0, batching_window_seconds=WINDOW, idle_seconds=6
    )
    outcomes: list = []
    running = threading.Thread(target=lambda: outcomes.append(run_ingest_job(instance, **config.model_dump())))
    running.start()
    time.sleep(1)
    stream = SteadyStream(pipeline.sqs, messages.bodies, RATE, SECONDS).start().wait()
    running.join()

    [outcome] = outcomes
    assert outcome.success, outcome.error
    assert (stream.sent, outcome.metadata["received"]) == (len(messages.bodies), len(messages.bodies))
    assert count(pipeline, messages) == Count()  # exactly once, nothing left
    sizes = chunk_sizes(instance, outcome.run_id)
    assert len(sizes) >= SECONDS / (WINDOW + 1) / 2, sizes  # 8-12 on an idle machine; 1 without the window
    assert max(sizes) <= len(messages.bodies) / 4, sizes
    materialization = instance.get_latest_materialization_event(raw_login_messages.key)
    assert materialization.asset_materialization.metadata["chunks"].value == len(sizes)


def chunk_sizes(instance: dg.DagsterInstance, run_id: str) -> list[int]:
    """Each chunk's size, from the run's progress lines ("chunk N: R received, ...", R counting them all)."""
    received = [
        int(log.user_message.split(": ", 1)[1].split(" ", 1)[0])
        for log in instance.all_logs(run_id)
        if log.user_message.startswith("chunk ")
    ]
    return [now - before for before, now in zip([0, *received], received, strict=False)]


def test_a_p95_over_the_threshold_warns_without_failing_the_run(pipeline, instance):
    pipeline.seed([json.dumps(event) for event in sample_events()[:5]])
    result = defs.resolve_job_def("ingest_logins_job").execute_in_process(
        instance=instance,
        run_config=dg.RunConfig(
            ops={
                ingest_logins.op.name: IngestConfig(),
                send_to_commit_p95.op.name: SendToCommitConfig(p95_threshold_seconds=1e-3),
            }
        ),
    )
    assert result.success  # not blocking
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == "send_to_commit_p95"]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    figures = {name: float(value.value) for name, value in evaluation.metadata.items() if name.endswith("_seconds")}  # type: ignore[arg-type]
    assert figures["p95_seconds"] > figures["threshold_seconds"] == 1e-3
