"""`make bench-analytics`: one day's analytics partition over 1,000,000 rows of user_logins (target < 10 s).

On a Postgres of its own (pgserver's binaries, a free port, a temporary folder): the migrations, then two
days of 1,000,000 logins each, made in SQL with the repeats of real traffic (125,000 users, about 8 logins
each; second devices, shared devices and addresses; tokens of 64 hex characters). It times:

- the Dagster run that materializes the second day's partition of every analytics table (daily_analytics_job,
  in process, as `logins-pipeline analytics` runs it), the same refresh in SQL alone, its parts, and each
  table's refresh on its own;
- what the analytics cost the drain: inserting 1,000,000 rows with and without migration 0003's indexes,
  and the query that finds the days a 100,000-row run wrote;

and prints each refresh's EXPLAIN (ANALYZE, BUFFERS) plan. --write puts them into docs/benchmarks.md, between
its analytics-bench markers.
"""

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
from markdown_section import write_section  # benchmarks/, run as a script

from logins_pipeline import analytics, settings
from logins_pipeline.local.services import LocalPostgres, free_port
from logins_pipeline.resources.postgres import apply_migrations, scalar

DAY = date(2026, 11, 30)
ROWS = 1_000_000

# One day of logins: user u logs in from their device (a second one for a quarter of users, a device shared
# with the users u ± 0..3 of every 500th group for some), from home or a mobile address (one shared by
# about 20 users in every 2,000th group), with a version and a locale of their own. %(rows)s logins of
# %(rows)s / 8 users (benchmarks/retention_bench.py makes a year of smaller days with it).
GENERATE_DAY = """
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
FROM (SELECT i, floor(random() * (%(rows)s / 8))::int AS u, random() AS r1, random() AS r2
      FROM generate_series(1, %(rows)s) AS i) AS g
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


def load_only(conn: psycopg.Connection) -> None:
    with conn.transaction(force_rollback=True):
        conn.execute(analytics.LOAD_DAY, {"day": DAY})
        conn.execute(analytics.GROUP_DAY)


def explain(conn: psycopg.Connection, sql: str, params: dict) -> str:
    rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", params).fetchall()
    return "\n".join(line for (line,) in rows)


def plans(conn: psycopg.Connection) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of loading DAY and of each table's statements for it, rolled back."""
    params = {"day": DAY}
    with conn.transaction(force_rollback=True):
        conn.execute(f"SET LOCAL work_mem = '{analytics.WORK_MEM}'")
        found = {
            "load the day (login_day)": explain(conn, analytics.LOAD_DAY, params),
            "group it (login_groups)": explain(conn, analytics.GROUP_DAY, {}),
        }
        conn.execute("ANALYZE login_day, login_groups")
        for table in analytics.TABLES.values():
            table_params = {**params, "min_users": analytics.MIN_USERS.get(table.name)}
            conn.execute(f"DELETE FROM public.{table.name} WHERE create_date = %(day)s", params)
            statements = ((table.invalidated,) if table.invalidated else ()) + table.inserts
            found[table.name] = "\n\n".join(explain(conn, sql, table_params) for sql in statements)
    return found


def insert_cost(conn: psycopg.Connection) -> tuple[float, float]:
    """Seconds to insert a day of ROWS into an empty copy of user_logins with all its indexes, and into one
    with only the indexes it had before migration 0003 (the unique message_id)."""
    conn.execute("CREATE TABLE indexed (LIKE public.user_logins INCLUDING DEFAULTS INCLUDING INDEXES)")
    conn.execute("CREATE TABLE bare (LIKE public.user_logins INCLUDING DEFAULTS)")
    conn.execute("CREATE UNIQUE INDEX ON bare (message_id)")
    seconds = [
        timed(
            lambda t=table: conn.execute(
                GENERATE_DAY.replace("INSERT INTO public.user_logins", f"INSERT INTO {t}"), {"day": DAY, "rows": ROWS}
            )
        )
        for table in ("indexed", "bare")
    ]
    conn.execute("DROP TABLE indexed, bare")
    return seconds[0], seconds[1]


def _figures_text(figures: dict) -> str:
    return ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:.3f}" for k, v in figures.items())


def run(folder: Path, reps: int) -> tuple[list[str], dict[str, str]]:
    postgres = LocalPostgres(folder, port=free_port())
    postgres.start()
    try:
        postgres.ensure_database("bench")
        dsn = postgres.admin_dsn("bench")
        with psycopg.connect(dsn, autocommit=True) as conn:
            apply_migrations(conn)
            for day in (DAY - timedelta(days=1), DAY):
                conn.execute(GENERATE_DAY, {"day": day, "rows": ROWS})
            conn.execute("VACUUM ANALYZE public.user_logins")
            total = scalar(conn, "SELECT count(*) FROM public.user_logins")
            day_rows = scalar(conn, "SELECT count(*) FROM public.user_logins WHERE create_date = %s", (DAY,))

            first_day = timed(
                lambda: analytics.refresh_day(conn, list(analytics.TABLES.values()), DAY - timedelta(days=1))
            )
            dagster_seconds = materialize_day_with_dagster(dsn)
            all_tables = median_of(reps, lambda: analytics.refresh_day(conn, list(analytics.TABLES.values()), DAY))
            per_table = {
                name: median_of(reps, lambda t=table: analytics.refresh_day(conn, [t], DAY))
                for name, table in analytics.TABLES.items()
            }
            load_day = median_of(reps, lambda: load_only(conn))
            checks = median_of(
                reps, lambda: [analytics.offending_rows(conn, t, DAY) for t in analytics.TABLES.values()]
            )
            figures = {name: analytics.figures(conn, table, DAY) for name, table in analytics.TABLES.items()}
            found_plans = plans(conn)
            with_indexes, without = insert_cost(conn)
            # A run that wrote 100,000 rows in its last 30 s.
            conn.execute(
                "UPDATE public.user_logins SET ingested_at = now() WHERE message_id IN "
                "(SELECT message_id FROM public.user_logins WHERE create_date = %s LIMIT 100000)",
                (DAY,),
            )
            days_query = median_of(reps, lambda: analytics.days_written_since(conn, 30))
    finally:
        postgres.stop()

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {platform.machine()}, {os.cpu_count()} CPUs, Postgres 16 (pgserver), "
        f"`{analytics.WORK_MEM}` work_mem for the refresh; user_logins holds {total:,} rows, {day_rows:,} on "
        f"{DAY}; medians of {reps} runs.",
        "",
        "| what | seconds | target |",
        "|---|---|---|",
        f"| **one day's partition of all five tables, a Dagster run** (`daily_analytics_job`, in process) "
        f"| **{dagster_seconds:.2f}** | < 10 |",
        f"| the same refresh in SQL alone (`analytics.refresh_day`, one transaction) | {all_tables:.2f} | |",
        f"| of which loading the day into `login_day` and grouping it into `login_groups` | {load_day:.2f} | |",
        f"| the five checks after it | {checks:.2f} | |",
        f"| the day before, the first day (every pair new to `user_device_first_seen`) | {first_day:.2f} | |",
        *(
            f"| `{name}` alone (with its own load of the day) ({_figures_text(figures[name])}) | {seconds:.2f} | |"
            for name, seconds in per_table.items()
        ),
        f"| insert 1,000,000 rows into an empty user_logins with migration 0003's two indexes | {with_indexes:.2f} | |",
        f"| the same without them (only the unique message_id) | {without:.2f} | |",
        f"| the days a 100,000-row run wrote (`days_written_since`, after each drain) | {days_query:.3f} | |",
    ]
    return lines, found_plans


def markdown(lines: list[str], found_plans: dict[str, str]) -> str:
    parts = [*lines, ""]
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
        write_section(args.write, text)


if __name__ == "__main__":
    main()
