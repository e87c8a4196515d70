"""`make bench-stream`: logins arriving as a steady stream, drained as a user runs the pipeline.

For each rate (default 100 logins a second on LocalStack, 1,000 on fauxqs: LocalStack on this machine cannot
receive and delete 1,000 a second while taking the producer's sends) its own queue pair, database and Dagster
instance (the shipped dagster.yaml: Postgres storage, the run queue), on an SQS server and Postgres of its own; the
webserver and the daemon (`login_queue_sensor` on, every 10 s); a producer sending generated logins at the
rate, in batches of 10 from a few threads, for --seconds, starting on an idle queue. On LocalStack the runs
call SQS through the counting proxy (logins_pipeline_tests/aws_like_sqs.py with every knob off: no latency,
no faults), which counts their calls; on fauxqs they call it directly (through the proxy, a drain runs at
about half its speed, below the 1,000 a second), and their calls are not counted. The producer sends to the
server directly.

Printed per rate: the send -> commit delay of every row (user_logins.ingested_at, the time of its
transaction, minus SentTimestamp): p50, p95, p99 and max of the rows sent after the first run started
(steady state), the delay of the stream's first login (it waits for a sensor tick and a run's start-up),
exactly-once (lost, duplicated, left in the queues), the runs and their API calls per message. --write puts
the table into docs/benchmarks.md, between its stream-bench markers.
"""

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from fauxqs_server import VERSION as FAUXQS_VERSION
from fauxqs_server import fauxqs_server  # benchmarks/, run as a script
from markdown_section import write_section

from logins_pipeline import settings
from logins_pipeline.local.dagster_ui import dagster_ui
from logins_pipeline.local.environment import LocalEnvironment, dagster_instance_env, write_dagster_yaml
from logins_pipeline.local.services import free_port
from logins_pipeline_tests.aws_like_sqs import AwsLikeSQS
from logins_pipeline_tests.chaos import Messages, count, stored
from logins_pipeline_tests.harness import Pipeline, new_pipeline
from logins_pipeline_tests.stream import SteadyStream

REPO = Path(__file__).parents[1]
BILLED = ("ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")
SETTLE_SECONDS = 180  # after the stream: the most the runs may take to store what is left
DELAYS = "SELECT extract(epoch FROM ingested_at - sent_at)::float8, sent_at FROM user_logins ORDER BY sent_at"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ingest_runs(dagster_home: Path) -> tuple[list[dg.RunRecord], list[float]]:
    """The runs, oldest first, and for the first: when it was requested, started, began its step and
    committed its first chunk (time.time())."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = list(instance.get_run_records(filters=dg.RunsFilter(job_name="ingest_logins_job"), ascending=True))
        if not runs:
            return runs, []
        logs = instance.all_logs(runs[0].dagster_run.run_id)
        step = next(
            (e.timestamp for e in logs if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"), 0.0
        )
        chunk = next((e.timestamp for e in logs if e.user_message.startswith("chunk 1:")), 0.0)
        return runs, [runs[0].create_timestamp.timestamp(), runs[0].start_time or 0.0, step, chunk]


def stream_rows(local: LocalEnvironment, base_env: dict, folder: Path, rate: int, server: str, seconds: int):
    """The rows of one stream, on LocalStack (the local services') or on a fauxqs of its own."""
    if server == "fauxqs":
        with fauxqs_server(base_env[settings.AWS_REGION]) as endpoint:
            env = {**base_env, settings.AWS_ENDPOINT_URL_SQS: endpoint}
            # no counting proxy: at this rate it would be the bottleneck (a drain through it runs at about half)
            return measure_stream(
                local, env, folder, rate, seconds, f"{rate:,} msgs/s for {seconds} s on fauxqs", False
            )
    name = f"{rate:,} msgs/s for {seconds} s on LocalStack"
    return measure_stream(local, base_env, folder, rate, seconds, name, True)


def measure_stream(
    local: LocalEnvironment, base_env: dict, folder: Path, rate: int, seconds: int, stream_name: str, counted: bool
):
    pipeline: Pipeline = new_pipeline(local.postgres, base_env, folder)
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    local.postgres.ensure_database(database)
    write_dagster_yaml(pipeline.dagster_home)
    instance_env = dagster_instance_env(local.postgres, database)
    os.environ.update(instance_env)  # for reading the runs back here
    messages = Messages.generate(rate * seconds)
    upstream = base_env[settings.AWS_ENDPOINT_URL_SQS]
    with AwsLikeSQS(upstream) if counted else contextlib.nullcontext() as proxy:
        endpoint = proxy.endpoint_url if proxy else upstream
        env = {**os.environ, **pipeline.env, **instance_env, settings.AWS_ENDPOINT_URL_SQS: endpoint}
        with dagster_ui(REPO / "workspace.yaml", env, daemon=True, log_dir=folder):
            time.sleep(5)  # the daemon's first sensor tick has found the queue empty: it is idle
            if proxy:
                proxy.reset()
            stream = SteadyStream(pipeline.sqs, messages.bodies, rate, seconds, senders=4).start().wait()
            deadline = time.monotonic() + SETTLE_SECONDS
            while stored(pipeline) < len(messages.bodies) and time.monotonic() < deadline:
                time.sleep(1)
            calls = proxy.calls() if proxy else None
            runs, first_run_times = ingest_runs(pipeline.dagster_home)
            outcome = count(pipeline, messages)
    delays = pipeline.query(DELAYS)
    requested, first_run, step, first_commit = first_run_times or [float("inf")] * 4
    steady = [d for d, sent in delays if sent.timestamp() >= first_run]
    draining = [d for d, sent in delays if sent.timestamp() >= first_commit]
    since_first = ", ".join(
        f"{what} +{at - stream.started:.1f} s"
        for what, at in (
            ("requested", requested),
            ("started", first_run),
            ("step", step),
            ("first commit", first_commit),
        )
    )
    name = f"stream {stream_name} (sensor + daemon)"
    rows = [
        (
            f"{name}: send->commit, steady state",
            f"p99 {percentile(steady, 0.99):.1f} s" if steady else "no rows",
            (
                f"p50 {percentile(steady, 0.5):.1f} s, p95 {percentile(steady, 0.95):.1f} s, max {max(steady):.1f} s "
                f"over {len(steady):,} rows sent after the first run started; target p99 < 15 s"
            )
            if steady
            else "",
        ),
        (
            f"{name}: send->commit, once the first run has committed",
            f"p99 {percentile(draining, 0.99):.1f} s" if draining else "no rows",
            f"p50 {percentile(draining, 0.5):.1f} s, p95 {percentile(draining, 0.95):.1f} s, "
            f"max {max(draining):.1f} s over {len(draining):,} rows"
            if draining
            else "",
        ),
        (
            f"{name}: the first login after an idle queue",
            f"{delays[0][0]:.1f} s" if delays else "no rows",
            f"a sensor tick, a run's start-up and a batching window; target < 45 s; first run: {since_first}",
        ),
        (
            f"{name}: exactly once",
            f"lost {outcome.lost}, duplicated {outcome.duplicated}, left {outcome.left}",
            f"{stream.sent:,} sent (the producer at most {stream.behind:.1f} s behind its schedule); {len(runs)} runs",
        ),
    ]
    if calls:
        billed = sum(calls["by_action"].get(action, 0) for action in BILLED)
        by_action = ", ".join(f"{action} {n:,}" for action, n in sorted(calls["by_action"].items()))
        rows.append(
            (
                f"{name}: API calls per message",
                f"{billed / max(1, stream.sent):.3f}",
                f"{by_action} (the runs' and the sensor's calls)",
            )
        )
    for row in rows:
        print(" | ".join(row), file=sys.stderr, flush=True)
    return rows


def stream_spec(text: str) -> tuple[int, str]:
    rate, _, server = text.partition(":")
    if server not in ("localstack", "fauxqs"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected RATE:localstack or RATE:fauxqs")
    return int(rate), server


def run(args) -> str:
    with tempfile.TemporaryDirectory(prefix="logins-stream-bench-") as tmp:
        local = LocalEnvironment(Path(tmp), sqs_port=free_port(), postgres_port=free_port())
        base_env = local.up()
        try:
            rows = [
                row
                for rate, server in args.streams
                for row in stream_rows(local, base_env, Path(tmp) / f"rate-{rate}", rate, server, args.seconds)
            ]
        finally:
            local.down()
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, LocalStack or fauxqs {FAUXQS_VERSION} SQS "
        "(per row), Postgres 16 (pgserver), "
        "Dagster webserver + daemon on a Postgres instance.",
        "",
        "| path | figure | note |",
        "|---|---|---|",
        *[f"| {path} | {figure} | {note} |" for path, figure, note in rows],
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--streams",
        type=stream_spec,
        nargs="+",
        default=[(100, "localstack"), (1_000, "fauxqs")],
        help="RATE:SERVER pairs, SERVER localstack or fauxqs (default: 100:localstack 1000:fauxqs)",
    )
    parser.add_argument("--seconds", type=int, default=120, help="how long each stream lasts")
    parser.add_argument("--write", type=Path, help="also write the table into this Markdown file")
    args = parser.parse_args()
    table = run(args)
    print(table)
    if args.write:
        write_section(args.write, table, "stream-bench", "Streams (`make bench-stream`)")


if __name__ == "__main__":
    main()
