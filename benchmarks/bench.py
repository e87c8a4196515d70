"""`make bench`: measure the pipeline against its baselines in one run, on its own local services.

Prints one Markdown table (and writes it to docs/benchmarks.md with --write): messages/s of each path as
the median of --reps repetitions, the ratios against the baselines measured in the same run, the peak RSS
of a 1,000,000-message drain through the core path, the idle sensor tick, and the seeding rate. Each row is
also printed to stderr as soon as it is measured.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psutil
import psycopg

from logins_pipeline import settings
from logins_pipeline.core.generate import generate_logins
from logins_pipeline.core.masking import parse_masking_key
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.vault import parse_vault_key
from logins_pipeline.defs.logins.sensors import login_queue_sensor
from logins_pipeline.drain.ingest import DrainLimits, drain
from logins_pipeline.drain.pipeline import BUILD_PROCESSES, store_chunks
from logins_pipeline.local.environment import LocalEnvironment, create_queues
from logins_pipeline.local.services import free_port
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations
from logins_pipeline.resources.sqs import SQS_BATCH, SQSResource
from logins_pipeline_tests.aws_like_sqs import AwsLikeSQS

CHUNK = DrainLimits().chunk_size  # as a run does it
SENT_MS = 1_700_000_000_000


def bodies(count: int, seed: int = 7) -> list[str]:
    return [json.dumps(event) for event in generate_logins(count, seed)]


def messages(body_list: list[str]) -> list[ReceivedMessage]:
    return [ReceivedMessage(str(uuid.uuid4()), "-", SENT_MS, 1, body) for body in body_list]


class Bench:
    def __init__(self, state_dir: Path):
        self.local = LocalEnvironment(state_dir, sqs_port=free_port(), postgres_port=free_port())
        self.env = self.local.up()
        os.environ.update(self.env)  # boto3 reads the endpoint and credentials; spawned workers inherit them
        masking_key = parse_masking_key(self.env[settings.MASKING_KEY], development=True)
        self.keys = PiiKeys(masking_key)
        self.keys_with_vault = PiiKeys(masking_key, parse_vault_key(self.env[settings.VAULT_KEY], development=True))

    def database(self) -> PostgresResource:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.local.postgres.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        postgres = PostgresResource(dsn=self.local.postgres.admin_dsn(name))
        with postgres.connect() as conn:
            apply_migrations(conn)
        return postgres

    def queue(self, receive_wait: int = 1) -> SQSResource:
        client = SQSResource(queue_url="-", region_name="us-east-1").client()
        url = create_queues(client, name=f"bench-{uuid.uuid4().hex[:10]}", dlq_name=f"bench-{uuid.uuid4().hex[:10]}")
        return SQSResource(queue_url=url, region_name="us-east-1", wait_time_seconds=receive_wait)


# --- core path: bodies in memory -> committed rows ------------------------------------------------------


def in_chunks(received: list[ReceivedMessage]) -> Iterator[list[ReceivedMessage]]:
    return (received[i : i + CHUNK] for i in range(0, len(received), CHUNK))


def core_path(postgres: PostgresResource, received: list[ReceivedMessage], keys: PiiKeys) -> float:
    """What a run does once it has the messages: store_chunks, its build workers included (their start too)."""
    started = time.perf_counter()
    with postgres.connect() as conn:
        for _ in store_chunks(conn, in_chunks(received), keys):
            pass
    return len(received) / (time.perf_counter() - started)


BASELINE_TABLE = """CREATE TABLE IF NOT EXISTS baseline_user_logins (user_id varchar(128), device_type varchar(32),
    masked_ip varchar(256), masked_device_id varchar(256), locale varchar(32), app_version integer, create_date date)"""


def per_row_baseline(postgres: PostgresResource, body_list: list[str]) -> float:
    """The exercise's way: json.loads + unkeyed SHA-256 + one INSERT and one COMMIT per row."""
    with psycopg.connect(postgres.dsn) as conn:
        conn.execute(BASELINE_TABLE)
        conn.commit()
        started = time.perf_counter()
        for body in body_list:
            event = json.loads(body)
            conn.execute(
                "INSERT INTO baseline_user_logins VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    event["user_id"],
                    event["device_type"],
                    hashlib.sha256(event["ip"].encode()).hexdigest(),
                    hashlib.sha256(event["device_id"].encode()).hexdigest(),
                    event["locale"],
                    int(event["app_version"].split(".")[0]),
                    datetime.now(UTC).date(),
                ),
            )
            conn.commit()
        return len(body_list) / (time.perf_counter() - started)


# --- end to end through the local SQS server ----------------------------------------------------------


def pipeline_drain(sqs: SQSResource, postgres: PostgresResource, keys: PiiKeys, receivers: int) -> tuple[int, float]:
    summary = drain(sqs, postgres, keys, DrainLimits(max_messages=10**9, chunk_size=CHUNK, receivers=receivers))
    return summary.received, summary.seconds


def _one_run(args) -> tuple[int, float]:
    queue_url, dsn, key_text, receivers = args
    keys = PiiKeys(parse_masking_key(key_text, development=True))
    sqs = SQSResource(queue_url=queue_url, region_name="us-east-1")
    started = time.perf_counter()
    received, _ = pipeline_drain(sqs, PostgresResource(dsn=dsn), keys, receivers)
    return received, time.perf_counter() - started


def parallel_runs(pool, sqs: SQSResource, postgres: PostgresResource, key_text: str, runs: int) -> tuple[int, float]:
    """`runs` separate processes draining the same queue, as parallel Dagster runs would."""
    started = time.perf_counter()
    results = list(pool.map(_one_run, [(sqs.queue_url, postgres.dsn, key_text, 2)] * runs))
    return sum(r for r, _ in results), time.perf_counter() - started


# --- end to end through AWS-like SQS (logins_pipeline_tests/aws_like_sqs.py) ---------------------------

AWS_LIKE_BENCH = {"receive": "uniform", "false_empty": 0.05, "error_rate": 0.01, "bandwidth": None}


def bare_drain(sqs: SQSResource, threads: int) -> tuple[int, float]:
    """The server's own rate: receive 10 + DeleteMessageBatch on `threads` threads, no processing. A short or
    empty receive proves nothing on AWS, so a thread stops as the pipeline's receivers do: after two empty
    receives in a row, if the queue then shows nothing visible."""
    lock, count = threading.Lock(), [0]

    def worker(_):
        client, empties = sqs.client(), 0
        while empties < 2 or sqs.queue_depth(client).visible:
            batch = sqs.receive(client)
            empties = 0 if batch else min(empties + 1, 2)
            if batch:
                sqs.delete(batch, client)
                with lock:
                    count[0] += len(batch)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return count[0], time.perf_counter() - started


@dataclass
class AwsLikeRun:
    received: int
    seconds: float
    calls: dict
    chunk_sizes: list[int]

    @property
    def rate(self) -> float:
        return self.received / self.seconds

    def calls_per_message(self) -> float:
        by_action = self.calls["by_action"]
        billed = ("ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")
        return sum(by_action.get(action, 0) for action in billed) / self.received

    def floor(self) -> float:
        """One receive per batch the queue returned, one delete per 10 messages."""
        batches = self.calls["by_action"].get("ReceiveMessage", 0) - self.calls["empty_receives"]
        return (batches + self.received / SQS_BATCH) / self.received

    def fill(self, chunk_size: int) -> float:
        """Mean size of the chunks taken while a backlog waited (all but the last), over the chunk size."""
        full = self.chunk_sizes[:-1] or self.chunk_sizes
        return statistics.mean(full) / chunk_size


def aws_like_run(sqs: SQSResource, postgres: PostgresResource, keys: PiiKeys, receivers: int, proxy) -> AwsLikeRun:
    """One run at its defaults (but `receivers`) through the proxy, with the calls it made."""
    sizes, seen = [], [0]

    def progress(summary):
        sizes.append(summary.received - seen[0])
        seen[0] = summary.received

    proxy.reset()
    summary = drain(sqs, postgres, keys, DrainLimits(receivers=receivers), progress=progress)
    return AwsLikeRun(summary.received, summary.seconds, proxy.calls(), sizes)


def aws_like_rows(bench, proxy, latency: float, receivers: int, count: int) -> list[tuple[str, str, str]]:
    proxy.configure(latency=latency, **AWS_LIKE_BENCH)
    ms = f"{latency * 1000:.0f} ms"
    e2e_bodies = bodies(count, seed=13)

    def seeded() -> SQSResource:
        queue = bench.queue()
        assert queue.send_all(e2e_bodies, senders=4) == 0
        return SQSResource(queue_url=queue.queue_url, region_name="us-east-1", endpoint_url=proxy.endpoint_url)

    bare_received, bare_seconds = bare_drain(seeded(), receivers)
    bare = bare_received / bare_seconds
    ours = aws_like_run(seeded(), bench.database(), bench.keys, receivers, proxy)
    calls, floor = ours.calls_per_message(), ours.floor()
    return [
        (
            f"AWS-like {ms}: bare drain, {receivers} threads, {count:,} msgs",
            f"{fmt(bare)} msgs/s",
            f"receive 10 + DeleteMessageBatch; {bare_received:,} drained",
        ),
        (
            f"AWS-like {ms}: one run, {receivers} receivers",
            f"{fmt(ours.rate)} msgs/s",
            f"{ours.rate / bare:.0%} of bare drain (target >= 80%); {ours.received:,} drained in "
            f"{len(ours.chunk_sizes)} chunks",
        ),
        (
            f"AWS-like {ms}: calls per message, {receivers} receivers",
            f"{calls:.3f}",
            f"floor {floor:.3f}, {calls / floor - 1:+.0%} (target within 10%); "
            + ", ".join(f"{action} {n:,}" for action, n in sorted(ours.calls["by_action"].items()))
            + f"; false empties {ours.calls['false_empties']}, errors {sum(ours.calls['errors'].values())}",
        ),
        (
            f"AWS-like {ms}: chunk fill while a backlog waits, {receivers} receivers",
            f"{ours.fill(CHUNK):.0%}",
            "target >= 90%; chunk sizes " + ", ".join(f"{n:,}" for n in ours.chunk_sizes),
        ),
    ]


# --- memory: a 1M backlog through the core path, in bounded chunks --------------------------------------


def _peak_kib(pid: int) -> int:
    """VmHWM of a process: its peak RSS so far, in KiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def _watch_descendants(stop: threading.Event, peaks: list[int]) -> None:
    """The build workers are children of the forkserver, not of this process, so RUSAGE_CHILDREN misses
    them: sample each descendant's peak RSS (it only grows) until `stop`."""
    me = psutil.Process()
    while not stop.wait(0.2):
        peaks.extend(_peak_kib(child.pid) for child in me.children(recursive=True))


def _drain_million(args) -> tuple[float, int, int]:
    """Messages/s, then the peak RSS (KiB) of this process and of the largest build worker (or forkserver)."""
    dsn, key_text, total = args
    keys = PiiKeys(parse_masking_key(key_text, development=True))
    started = time.perf_counter()
    events = generate_logins(total, 11)
    chunks = (
        messages([json.dumps(next(events)) for _ in range(min(CHUNK, total - done))]) for done in range(0, total, CHUNK)
    )
    stop, worker_peaks = threading.Event(), [0]
    watcher = threading.Thread(target=_watch_descendants, args=(stop, worker_peaks))
    watcher.start()
    try:
        with PostgresResource(dsn=dsn).connect() as conn:
            for _ in store_chunks(conn, chunks, keys):
                pass
    finally:
        stop.set()
        watcher.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return total / (time.perf_counter() - started), peak, max(worker_peaks)


# --- sensor tick ---------------------------------------------------------------------------------------


def sensor_tick_ms(sqs: SQSResource) -> float:
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"sqs": sqs})
        started = time.perf_counter()
        result = login_queue_sensor(context)
        elapsed = (time.perf_counter() - started) * 1000
    assert isinstance(result, dg.SensorResult) and not result.run_requests, "an idle tick must request no run"
    return elapsed


def median_of(reps: int, measure) -> tuple[float, list[float]]:
    values = [measure() for _ in range(reps)]
    return statistics.median(values), values


def fmt(value: float) -> str:
    return f"{value:,.0f}"


class Rows(list):
    """The table's rows (path, figure, note), each also printed to stderr as it is measured: a whole run takes
    about 40 minutes, and the table comes only at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.started = time.monotonic()

    def append(self, row: tuple[str, str, str]) -> None:
        super().append(row)
        minutes = (time.monotonic() - self.started) / 60
        print(f"[{minutes:5.1f} min] " + " | ".join(row), file=sys.stderr, flush=True)

    def extend(self, rows) -> None:
        for row in rows:
            self.append(row)


def aws_like_section(bench, count: int) -> Iterator[tuple[str, str, str]]:
    """Every AWS-like row: 20 and 50 ms a call, 4 and 16 receivers."""
    with AwsLikeSQS(bench.env[settings.AWS_ENDPOINT_URL_SQS], seed=1) as proxy:
        for latency in (0.02, 0.05):
            for receivers in (4, 16):
                yield from aws_like_rows(bench, proxy, latency, receivers, count)


def run_aws_like(args) -> str:
    rows = Rows()
    with tempfile.TemporaryDirectory(prefix="logins-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            rows.extend(aws_like_section(bench, args.aws_like_messages))
        finally:
            bench.local.down()
    return report(rows, args)


def run(args) -> str:
    rows = Rows()
    with tempfile.TemporaryDirectory(prefix="logins-bench-") as tmp:
        bench = Bench(Path(tmp))
        key_text = bench.env[settings.MASKING_KEY]
        # Separate processes, as runs are; not multiprocessing.Pool, whose daemonic workers may not start the
        # runs' build workers.
        pool = ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn"))
        try:
            core_bodies = bodies(args.core_messages)
            baseline_bodies = core_bodies[: args.baseline_messages]
            core, core_all = median_of(
                args.reps, lambda: core_path(bench.database(), messages(core_bodies), bench.keys)
            )
            vaulted, vaulted_all = median_of(
                args.reps, lambda: core_path(bench.database(), messages(core_bodies), bench.keys_with_vault)
            )
            base, base_all = median_of(args.reps, lambda: per_row_baseline(bench.database(), baseline_bodies))
            rows.append(
                (
                    f"core path, {args.core_messages:,} msgs (parse, mask, validate, COPY, commit)",
                    f"{fmt(core)} msgs/s",
                    f"{BUILD_PROCESSES} build workers; runs: " + ", ".join(map(fmt, core_all)),
                )
            )
            rows.append(
                (
                    "core path with the PII vault on (+ AES-SIV of ip and device_id, pii_vault rows)",
                    f"{fmt(vaulted)} msgs/s",
                    "runs: " + ", ".join(map(fmt, vaulted_all)),
                )
            )
            rows.append(
                (
                    f"per-row baseline, {args.baseline_messages:,} msgs (json.loads + SHA-256 + INSERT + COMMIT)",
                    f"{fmt(base)} msgs/s",
                    "runs: " + ", ".join(map(fmt, base_all)),
                )
            )
            rows.append(("core path / per-row baseline", f"{core / base:.1f}x", "target >= 25x, >= 50,000 msgs/s"))

            e2e_bodies = bodies(args.e2e_messages, seed=9)

            def seeded() -> SQSResource:
                sqs = bench.queue()
                assert sqs.send_all(e2e_bodies, senders=4) == 0
                return sqs

            def rate(drain_once, *drain_args) -> float:
                """Median over the repetitions of one drain of a freshly seeded queue."""

                def once() -> float:
                    received, seconds = drain_once(seeded(), *drain_args)
                    assert received == args.e2e_messages, f"drained {received} of {args.e2e_messages}"
                    return received / seconds

                return median_of(args.reps, once)[0]

            def pipeline_once(sqs, receivers):
                return pipeline_drain(sqs, bench.database(), bench.keys, receivers)

            def parallel_once(sqs, runs):
                return parallel_runs(pool, sqs, bench.database(), key_text, runs)

            for receivers in (1, 2, 4):
                bare, ours = rate(bare_drain, receivers), rate(pipeline_once, receivers)
                rows.append(
                    (f"SQS bare drain, {receivers} receiver(s), {args.e2e_messages:,} msgs", f"{fmt(bare)} msgs/s", "")
                )
                rows.append(
                    (
                        f"pipeline end to end, 1 run, {receivers} receiver(s)",
                        f"{fmt(ours)} msgs/s",
                        f"{ours / bare:.0%} of bare drain (target >= 80%)",
                    )
                )
            for runs in (2, 4):
                rows.append(
                    (
                        f"pipeline end to end, {runs} parallel runs x 2 receivers",
                        f"{fmt(rate(parallel_once, runs))} msgs/s",
                        "",
                    )
                )

            rows.extend(aws_like_section(bench, args.aws_like_messages))

            seed_rates = []
            for _ in range(args.reps):
                sqs, seed_bodies = bench.queue(), bodies(args.seed_messages, seed=3)
                started = time.perf_counter()
                assert sqs.send_all(seed_bodies, senders=4) == 0
                seed_rates.append(args.seed_messages / (time.perf_counter() - started))
            rows.append(
                (
                    f"seeding {args.seed_messages:,} msgs (SendMessageBatch, 4 senders)",
                    f"{fmt(statistics.median(seed_rates))} msgs/s",
                    "",
                )
            )

            empty = bench.queue()
            ticks = [sensor_tick_ms(empty) for _ in range(args.sensor_ticks)]
            rows.append(
                (
                    "sensor tick on an empty queue (median)",
                    f"{statistics.median(ticks):.0f} ms",
                    f"{args.sensor_ticks} ticks, max {max(ticks):.0f} ms; target < 200 ms, no run requested",
                )
            )

            million = (bench.database().dsn, key_text, args.drain_messages)
            million_rate, peak_kib, worker_kib = pool.submit(_drain_million, million).result()
            total_mib = (peak_kib + BUILD_PROCESSES * worker_kib) / 1024
            rows.append(
                (
                    f"{args.drain_messages:,}-msg drain through the core path: peak RSS",
                    f"{peak_kib / 1024:,.0f} MiB + {BUILD_PROCESSES} x {worker_kib / 1024:,.0f} MiB",
                    f"run process + build workers (shared pages counted in each): at most {total_mib:,.0f} MiB "
                    f"in all; {fmt(million_rate)} msgs/s incl. generating the bodies; target < 1 GiB",
                )
            )
        finally:
            pool.shutdown(cancel_futures=True)
            bench.local.down()
    return report(rows, args)


def report(rows, args) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or 'this machine'}: "
        f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, Postgres 16 (pgserver), LocalStack SQS. "
        f"Median of {args.reps} repetitions per figure.",
        "",
        "| path | figure | note |",
        "|---|---|---|",
        *[f"| {path} | {figure} | {note} |" for path, figure, note in rows],
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--core-messages", type=int, default=100_000)
    parser.add_argument("--baseline-messages", type=int, default=10_000)
    parser.add_argument("--e2e-messages", type=int, default=20_000)
    parser.add_argument(
        "--aws-like-messages",
        type=int,
        default=30_000,
        help="backlog of each AWS-like row: three chunks of a run at its defaults",
    )
    parser.add_argument("--seed-messages", type=int, default=100_000)
    parser.add_argument("--drain-messages", type=int, default=1_000_000)
    parser.add_argument("--sensor-ticks", type=int, default=20)
    parser.add_argument("--aws-like-only", action="store_true", help="only the AWS-like rows (about 10 minutes)")
    parser.add_argument("--write", type=Path, help="also write the table into this Markdown file")
    args = parser.parse_args()
    if args.aws_like_only and args.write:
        parser.error("--write replaces the whole table: not with --aws-like-only")
    table = run_aws_like(args) if args.aws_like_only else run(args)
    print(table)
    if args.write:
        write_between_markers(args.write, table)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def write_between_markers(path: Path, table: str) -> None:
    """Replace the measured table in `path`, keeping the hand-written analysis around it."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    path.write_text(f"{before}{START}\n{table}\n{END}{after}")


if __name__ == "__main__":
    main()
