"""`make bench-analytics`: one day's analytics partition over 1,000,000 rows of user_logins (target < 10 s).

On a Postgres of its own (pgserver's binaries, a free port, a temporary folder): the migrations, then two
days of 1,000,000 logins each, made in SQL with the repeats of real traffic (125,000 users, about 8 logins
each; second devices, shared devices and addresses; tokens of 64 hex characters). It times:

- the Dagster run that materializes the second day's partition of every analytics table (daily_analytics_job,
  in process, as `logins-pipeline analytics` runs it), and each table's refresh on its own;
- what the analytics cost the drain: inserting 1,000,000 rows with and without migration 0003's indexes,
  and the query that finds the days a 100,000-row run wrote;

and prints each refresh's EXPLAIN (ANALYZE, BUFFERS) plan. --write appends them to docs/benchmarks.md.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import psycopg

from logins_pipeline import analytics, settings
from logins_pipeline.local.services import LocalPostgres, free_port
from logins_pipeline.resources.postgres import apply_migrations

DAY = date(2026, 11, 30)
ROWS = 1_000_000
USERS = ROWS // 8

# One day of logins: user u logs in from their device (a second one for a quarter of users, a device shared
# with the users u ± 0..3 of every 500th group for some), from home or a mobile address (one shared by
# about 20 users in every 2,000th group), with a version and a locale of their own.
GENERATE_DAY = f"""
INSERT INTO public.user_logins (user_id, device_type, masked_ip, masked_device_id, locale, app_version,
                                create_date, message_id, sent_at, masking_key_id)
SELECT md5('user' || u)::uuid::text,
       CASE WHEN u %% 3 = 0 THEN 'ios' ELSE 'android' END,
       encode(sha256(convert_to(CASE WHEN r2 < 0.5 THEN 'home' || u
                                     WHEN u %% 2000 < 20 THEN 'nat' || u / 2000
                                     ELSE 'mobile' || u END, 'UTF8')), 'hex'),
       encode(sha256(convert_to(CASE WHEN u %% 500 < 4 AND r1 < 0.5 THEN 'shared' || u / 500
                                     WHEN u %% 4 = 0 AND r1 > 0.7 THEN 'second' || u
                                     ELSE 'device' || u END, 'UTF8')), 'hex'),
       (ARRAY['RU', 'PH', 'US', 'DE', 'BR', 'IN', NULL])[1 + u %% 7],
       (u %% 10) * 1000000 + (u %% 37) * 1000 + u %% 5,
       %(day)s,
       md5(%(day)s::text || i),
       %(day)s::timestamptz + (i * interval '86 milliseconds'),
       'bench'
FROM (SELECT i, floor(random() * {USERS})::int AS u, random() AS r1, random() AS r2
      FROM generate_series(1, {ROWS}) AS i) AS g
"""


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median_of(runs: int, action) -> float:
    return statistics.median(timed(action) for _ in range(runs))


def materialize_day_with_dagster(dsn: str) -> float:
    os.environ[settings.POSTGRES_DSN] = dsn
    from logins_pipeline.definitions import defs  # reads the environment's resources on import

    job = defs.resolve_job_def("daily_analytics_job")
    with dg.DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, partition_key=DAY.isoformat(), raise_on_error=True)
        seconds = time.perf_counter() - started
    assert result.success
    return seconds


def plans(conn: psycopg.Connection) -> dict[str, str]:
    """Each table's INSERT for DAY, EXPLAIN (ANALYZE, BUFFERS), rolled back."""
    found = {}
    for table in analytics.TABLES.values():
        min_users = {"shared_devices": analytics.DEVICE_MIN_USERS,
                     "shared_addresses": analytics.ADDRESS_MIN_USERS}.get(table.name)
        with conn.transaction(force_rollback=True):
            conn.execute(f"SET LOCAL work_mem = '{analytics.WORK_MEM}'")
            conn.execute(f"DELETE FROM public.{table.name} WHERE create_date = %(day)s", {"day": DAY})
            rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {table.insert}",
                                {"day": DAY, "min_users": min_users}).fetchall()
        found[table.name] = "\n".join(line for (line,) in rows)
    return found


def insert_cost(conn: psycopg.Connection) -> tuple[float, float]:
    """Seconds to insert a day of ROWS into user_logins as migrated, and into a copy of it with only the
    indexes it had before migration 0003."""
    with_indexes = timed(lambda: conn.execute(GENERATE_DAY, {"day": DAY + timedelta(days=1)}))
    conn.execute("CREATE TABLE bare (LIKE public.user_logins INCLUDING DEFAULTS)")
    conn.execute("CREATE UNIQUE INDEX ON bare (message_id)")
    bare = GENERATE_DAY.replace("INSERT INTO public.user_logins", "INSERT INTO bare")
    without = timed(lambda: conn.execute(bare, {"day": DAY + timedelta(days=1)}))
    conn.execute("DROP TABLE bare")
    return with_indexes, without


def run(folder: Path, reps: int) -> tuple[list[str], dict[str, str]]:
    postgres = LocalPostgres(folder, port=free_port())
    postgres.start()
    try:
        postgres.ensure_database("bench")
        dsn = postgres.admin_dsn("bench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_migrations(conn)
            for day in (DAY - timedelta(days=1), DAY):
                conn.execute(GENERATE_DAY, {"day": day})
            conn.execute("VACUUM ANALYZE public.user_logins")
            total = conn.execute("SELECT count(*) FROM public.user_logins").fetchone()[0]
            day_rows = conn.execute("SELECT count(*) FROM public.user_logins WHERE create_date = %s", (DAY,)).fetchone()[0]

            dagster_seconds = materialize_day_with_dagster(dsn)
            per_table = {
                name: median_of(reps, lambda t=table: analytics.refresh_day(
                    conn, t, DAY, {"shared_devices": analytics.DEVICE_MIN_USERS,
                                   "shared_addresses": analytics.ADDRESS_MIN_USERS}.get(name)))
                for name, table in analytics.TABLES.items()
            }
            figures = {name: analytics.figures(conn, table, DAY) for name, table in analytics.TABLES.items()}
            found_plans = plans(conn)
            with_indexes, without = insert_cost(conn)
            # A run that wrote 100,000 rows of DAY (late: DAY + 1 has rows, so the later-days lookup has work).
            since = conn.execute("SELECT now()").fetchone()[0]
            conn.execute("UPDATE public.user_logins SET ingested_at = now() WHERE message_id IN "
                         "(SELECT message_id FROM public.user_logins WHERE create_date = %s LIMIT 100000)", (DAY,))
            days_query = median_of(reps, lambda: analytics.days_written_since(conn, since))
    finally:
        postgres.stop()

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {platform.machine()}, {os.cpu_count()} CPUs, Postgres 16 (pgserver), "
        f"`{analytics.WORK_MEM}` work_mem for the refresh; user_logins holds {total:,} rows, {day_rows:,} on "
        f"{DAY}; medians of {reps} runs.",
        "",
        "| what | seconds | target |",
        "|---|---|---|",
        f"| **one day's partition of all five tables, a Dagster run** (`daily_analytics_job`, in process) "
        f"| **{dagster_seconds:.2f}** | < 10 |",
        f"| the five refreshes alone (SQL, sum of the medians below) | {sum(per_table.values()):.2f} | |",
        *(f"| `{name}` ({', '.join(f'{k} {v:,}' if isinstance(v, int) else f'{k} {v:.3f}' for k, v in figures[name].items())}) "
          f"| {seconds:.2f} | |" for name, seconds in per_table.items()),
        f"| insert 1,000,000 rows into user_logins with migration 0003's indexes | {with_indexes:.2f} | |",
        f"| the same without them (only the unique message_id) | {without:.2f} | |",
        f"| the days a 100,000-row run wrote (`days_written_since`, after each drain) | {days_query:.3f} | |",
    ]
    return lines, found_plans


def markdown(lines: list[str], found_plans: dict[str, str]) -> str:
    parts = ["", "## Analytics: one day's partition of 1,000,000 rows (`make bench-analytics`)", "", *lines, ""]
    for name, plan in found_plans.items():
        parts += [f"`{name}`:", "", *("    " + line for line in plan.splitlines()), ""]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--write", type=Path, help="append the section to this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="analytics-bench-") as folder:
        lines, found_plans = run(Path(folder), args.reps)
    text = markdown(lines, found_plans)
    print(text)
    if args.write:
        with args.write.open("a") as out:
            out.write(text)


if __name__ == "__main__":
    main()
