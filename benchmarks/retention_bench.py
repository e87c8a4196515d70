"""`make bench-retention`: a drain, a day's analytics and a retention pass beside a year of history.

On a Postgres of its own (pgserver's binaries, a free port, a temporary folder), two databases with the
migrations: one whose user_logins holds --rows logins (default 50,000,000) spread over the 365 day partitions
before today, made in SQL (analytics_bench.GENERATE_DAY, a day per statement, --jobs at once), and one with
no history. It times, the medians of --reps:

- the drain's core path (build, mask, COPY, COMMIT: bench.core_path, build workers included) of 100,000 logins
  sent today into each, today's partition emptied in both before each run (target: with the history at
  >= 0.9x the empty one); and its writes alone (COPY and COMMIT of the same rows built beforehand);
- one day's analytics partition (analytics.refresh_day, all five tables) of yesterday with the year present,
  and of the same day alone (target: within 10%);
- one retention pass (retention.run_retention) keeping 335 of the 365 days (and today), so dropping the 30 oldest
  (target: < 5 s).

--write puts the table into docs/benchmarks.md, between its retention-bench markers.
"""

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from statistics import median

import psycopg
from analytics_bench import GENERATE_DAY  # benchmarks/, run as a script
from bench import bodies, core_path, in_chunks
from markdown_section import write_section

from logins_pipeline import analytics
from logins_pipeline.core.expiry import today_utc
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.messages import ReceivedMessage
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import Batch, build_batch
from logins_pipeline.local.services import LocalPostgres, free_port
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations, scalar, write_batch
from logins_pipeline.retention import RetentionPolicy, run_retention

DAYS = 365
DROPPED = 30
KEPT = DAYS - DROPPED + 1  # days kept, today's included: the history's 335 latest days and today
DRAINED = 100_000
KEYS = PiiKeys(MaskingKey.from_secret(bytes(range(32))))


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def make_days(dsn: str, days: list[date]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for day in days:
            conn.execute("SELECT public.logins_create_day(%s)", (day,))


def seed(dsn: str, days: list[date], rows_per_day: int, jobs: int) -> float:
    """Rows per second of making `days` of history, each day one INSERT ... SELECT (into its partition)."""

    def one_day(day: date) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(GENERATE_DAY, {"day": day, "rows": rows_per_day})

    started = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        for n, _ in enumerate(pool.map(one_day, days), 1):
            if n % 30 == 0:
                log(f"  {n} of {len(days)} days in {time.perf_counter() - started:.0f} s")
    return len(days) * rows_per_day / (time.perf_counter() - started)


def first_seen_from(conn: psycopg.Connection, first: date, last: date) -> None:
    """user_device_first_seen as the analytics of those days would have left it (their pairs, first days)."""
    conn.execute(
        "INSERT INTO public.user_device_first_seen (pair, first_day)"
        " SELECT md5(user_id || '/' || masked_device_id)::uuid, min(create_date) FROM public.user_logins"
        " WHERE create_date BETWEEN %s AND %s GROUP BY 1",
        (first, last),
    )


def todays_logins(body_list: list[str]) -> list[ReceivedMessage]:
    """The bodies as logins sent now (today's partition), with new message ids."""
    now_ms = int(time.time() * 1000)
    return [ReceivedMessage(str(uuid.uuid4()), "-", now_ms, 1, body) for body in body_list]


def refresh(dsn: str, day: date) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return timed(lambda: analytics.refresh_day(conn, list(analytics.TABLES.values()), day))


def history_database(postgres: LocalPostgres, history: list[date], rows_per_day: int, jobs: int) -> dict:
    """The database "full": `history`'s partitions and rows, and the oldest week's first-seen pairs."""
    full = postgres.admin_dsn("full")
    make_days(full, history)
    log(f"seeding {rows_per_day * len(history):,} rows over {len(history)} days ({jobs} at once)")
    seed_rate = seed(full, history, rows_per_day, jobs)
    with psycopg.connect(full, autocommit=True) as conn:
        first_seen_from(conn, history[-1], history[-7])
        conn.execute("VACUUM ANALYZE")
        total = scalar(conn, "SELECT count(*) FROM public.user_logins")
        size = scalar(conn, "SELECT pg_size_pretty(pg_database_size(current_database()))")
    log(f"seeded {total:,} rows ({size}) at {seed_rate:,.0f} rows/s")
    return {"total": total, "size": size, "seed_rate": seed_rate}


def empty_today(dsn: str, today: date) -> None:
    """Today's partition emptied and the cluster checkpointed: each timed drain starts from the same state in
    both databases (the history's days are the 365 before today), with no other drain's writes to flush."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE public.user_logins_{today:%Y%m%d} CASCADE")  # and its vault day (none: no vault key)
        conn.execute("CHECKPOINT")


def writes(dsn: str, batches: list[Batch]) -> float:
    """Seconds of writing `batches` (COPY and COMMIT each): the only part of a drain that touches user_logins."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return timed(lambda: [write_batch(conn, batch) for batch in batches])


@dataclass
class Drains:
    rates: list[float] = field(default_factory=list)  # msgs/s of the core path
    writes: list[float] = field(default_factory=list)  # seconds of its writes alone


def drains(empty: str, full: str, today: date, reps: int) -> tuple[Drains, Drains]:
    """The core path into each, and its writes alone (of batches built beforehand, so that the build's CPU
    time, which the table cannot change, does not hide their difference), `reps` times, alternated so that
    the machine's load falls on both."""
    body_list = bodies(DRAINED)
    core_path(PostgresResource(dsn=empty), todays_logins(body_list[:20_000]), KEYS)  # starts the forkserver
    measured = {empty: Drains(), full: Drains()}
    for rep in range(reps):
        received = todays_logins(body_list)
        batches = [build_batch(chunk, KEYS) for chunk in in_chunks(received)]
        for dsn in (empty, full) if rep % 2 == 0 else (full, empty):
            empty_today(dsn, today)
            measured[dsn].writes.append(writes(dsn, batches))
            empty_today(dsn, today)
            measured[dsn].rates.append(core_path(PostgresResource(dsn=dsn), todays_logins(body_list), KEYS))
        log(
            f"drain {rep + 1}: {measured[empty].rates[-1]:,.0f} msgs/s empty, {measured[full].rates[-1]:,.0f} full;"
            f" writes alone {measured[empty].writes[-1]:.2f} s empty, {measured[full].writes[-1]:.2f} s full"
        )
    return measured[empty], measured[full]


def analytics_day(empty: str, full: str, day: date, rows_per_day: int, reps: int) -> tuple[list[float], list[float]]:
    """Seconds of `day`'s analytics with the history, and with the same day alone (in "empty")."""
    with psycopg.connect(empty, autocommit=True) as conn:
        conn.execute("TRUNCATE public.user_logins, public.login_quarantine CASCADE")
        conn.execute(GENERATE_DAY, {"day": day, "rows": rows_per_day})
        conn.execute("VACUUM ANALYZE public.user_logins")
    with_history = [refresh(full, day) for _ in range(reps)]
    alone = [refresh(empty, day) for _ in range(reps)]
    log(f"analytics of {day}: {median(with_history):.2f} s with the history, {median(alone):.2f} s alone")
    return with_history, alone


def retention_pass(full: str, today: date) -> dict:
    with psycopg.connect(full, autocommit=True) as conn:
        policy = RetentionPolicy(rows=KEPT)
        started = time.perf_counter()
        report = run_retention(conn, policy, today)
        seconds = time.perf_counter() - started
        again = timed(lambda: run_retention(conn, policy, today))
        left = scalar(conn, "SELECT count(*) FROM public.logins_day_partitions('public.user_logins')")
    dropped = len(report.days_dropped.get("public.user_logins", []))
    rows = report.rows_removed.get("public.user_logins", 0)
    log(f"retention: {dropped} days ({rows:,} rows) dropped in {seconds:.2f} s; again {again:.2f} s")
    return {"seconds": seconds, "again": again, "left": left, "dropped": dropped, "rows": rows}


def runs(values: list[float], form: str) -> str:
    return "runs: " + ", ".join(format(value, form) for value in values)


def run(folder: Path, rows: int, reps: int, jobs: int) -> list[str]:
    today = today_utc()
    history = [today - timedelta(days=n) for n in range(1, DAYS + 1)]  # the year before today, the drain's day
    rows_per_day = rows // DAYS
    postgres = LocalPostgres(folder, port=free_port())
    postgres.start()
    try:
        full, empty = (postgres.admin_dsn(name) for name in ("full", "empty"))
        for name, dsn in (("full", full), ("empty", empty)):
            postgres.ensure_database(name)
            with psycopg.connect(dsn, autocommit=True) as conn:
                apply_migrations(conn)
        seeded = history_database(postgres, history, rows_per_day, jobs)
        into_empty, into_full = drains(empty, full, today, reps)
        day_full, day_alone = analytics_day(empty, full, today - timedelta(days=1), rows_per_day, reps)
        retention = retention_pass(full, today)
    finally:
        postgres.stop()

    paired = [f / e for e, f in zip(into_empty.rates, into_full.rates, strict=True)]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"Measured {when} on {platform.machine()}, {os.cpu_count()} CPUs (shared with other work), Postgres 16 "
        "(pgserver) with its defaults (the seeding's commits asynchronous). History: "
        f"{seeded['total']:,} rows in {DAYS} day partitions ending yesterday ({rows_per_day:,} a day, "
        f"{seeded['size']}), made in SQL at {seeded['seed_rate']:,.0f} rows/s; medians of {reps} runs.",
        "",
        "| what | figure | target |",
        "|---|---|---|",
        f"| drain's core path, {DRAINED:,} logins sent today, into an empty user_logins "
        f"| {median(into_empty.rates):,.0f} msgs/s | {runs(into_empty.rates, ',.0f')} |",
        f"| the same into user_logins with the history | {median(into_full.rates):,.0f} msgs/s "
        f"| {runs(into_full.rates, ',.0f')} |",
        f"| **with the history / empty** | **{median(into_full.rates) / median(into_empty.rates):.2f}x** | >= 0.9x |",
        f"| each run's pair, with the history / empty | {median(paired):.2f}x (median) | {runs(paired, '.2f')} |",
        f"| its writes alone (COPY, COMMIT of the same {DRAINED:,} rows built beforehand), empty "
        f"| {median(into_empty.writes):.2f} s | {runs(into_empty.writes, '.2f')} |",
        f"| the same with the history | {median(into_full.writes):.2f} s | {runs(into_full.writes, '.2f')} |",
        f"| **writes: with the history / empty** (time; above 1 is slower) "
        f"| **{median(into_full.writes) / median(into_empty.writes):.2f}x** | |",
        f"| one day's analytics (all five tables, {rows_per_day:,} logins of yesterday), the history present "
        f"| {median(day_full):.2f} s | {runs(day_full, '.2f')} |",
        f"| the same day with no history | {median(day_alone):.2f} s | {runs(day_alone, '.2f')} |",
        f"| **with the history / without** | **{median(day_full) / median(day_alone):.2f}x** | <= 1.10x |",
        f"| **a retention pass keeping {DAYS - DROPPED} of the {DAYS} days (and today)** ({retention['dropped']} days, "
        f"{retention['rows']:,} rows dropped, with their vault days; {retention['left']} day partitions left) "
        f"| **{retention['seconds']:.2f} s** | < 5 s |",
        f"| the same pass again (nothing to drop) | {retention['again']:.2f} s | |",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="rows of history (default 50,000,000)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=2, help="days seeded at once")
    parser.add_argument("--write", type=Path, help="write the section into this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="retention-bench-") as folder:
        lines = run(Path(folder), args.rows, args.reps, args.jobs)
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(args.write, text, "retention-bench", "A year of history (`make bench-retention`)")


if __name__ == "__main__":
    main()
