"""Daily login analytics, computed in Postgres from user_logins one day (create_date, UTC) at a time.

A refresh of a day rewrites that day of each table it is asked for in one transaction (DELETE the day,
INSERT it again), so materializing a day twice gives the same rows, and a reader sees the old day or the
new one, never half of either. The day's rows are read from user_logins once, into a temporary table, and
grouped into another that the counts read. Advisory locks make two refreshes of the same (table, day) wait for each
other instead of colliding on a primary key; new_device_logins takes one lock for all days (see below).

new_device_logins needs, for each login, "was this (user, device) pair seen on an earlier day?". An index
over user_logins would answer that, but every drain would pay for it (3x slower inserts, measured in
docs/benchmarks.md). Instead the refresh keeps user_device_first_seen (pair -> first day seen), a day's
pairs are upserted with least(first_day, day), and a day's new-device logins are those whose pair was first
seen that day. A refresh that lowers a pair's first day from a later day D makes D's partition stale; it
reports D (`later_days_invalidated`), and the automation refreshes D next (defs/logins/automation.py).
"""

from dataclasses import dataclass, field
from datetime import date

import psycopg

from logins_pipeline.resources.postgres import scalar

# The default thresholds of shared_devices / shared_addresses (README "Analytics" says why): a device used
# by 3 or more distinct users in a day, an address by 10 or more.
DEVICE_MIN_USERS = 3
ADDRESS_MIN_USERS = 10
# Sorts, hashes and the day's temporary table stay in memory (the defaults, 4 and 8 MB, spill to disk).
WORK_MEM = "256MB"
TEMP_BUFFERS = "512MB"
ANALYTICS_LOCK = 7_452_020  # pg_advisory_xact_lock(ANALYTICS_LOCK + table, day)

# The day's logins, and the same grouped by everything but the message: a user repeats the same device,
# address and version, so the counts read a few hundred thousand groups instead of a million logins.
LOAD_DAY = """
    CREATE TEMP TABLE login_day ON COMMIT DROP AS
    SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version, message_id, sent_at
    FROM public.user_logins WHERE create_date = %(day)s
"""
GROUP_DAY = """
    CREATE TEMP TABLE login_groups ON COMMIT DROP AS
    SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version, count(*) AS logins
    FROM login_day GROUP BY 1, 2, 3, 4, 5, 6
"""
PAIR = "md5({0}.user_id || '/' || {0}.masked_device_id)::uuid"
DAY_PAIRS = f"""(
    SELECT DISTINCT user_id, masked_device_id, {PAIR.format("login_groups")} AS pair FROM login_groups
    WHERE user_id IS NOT NULL AND masked_device_id IS NOT NULL
)"""


@dataclass(frozen=True)
class Table:
    name: str
    lock: int  # the table's advisory lock class is ANALYTICS_LOCK + this
    inserts: tuple[str, ...]  # SQL writing the day from login_day; the last one's row count is the day's rows
    figures: str  # SQL giving one row of numbers about the day, for the materialization's metadata
    check: str  # SQL counting the day's offending rows (0: the check passes)
    check_name: str
    check_description: str
    invalidated: str = ""  # SQL run before the inserts: later days this refresh makes stale
    lock_every_day: bool = False  # one lock for all days, not one per day


DAILY_LOGIN_STATS = Table(
    name="daily_login_stats",
    lock=1,
    inserts=(
        """
        WITH breakdown AS (
            SELECT GROUPING(device_type, locale, app_version) AS grouping_set,
                   coalesce(device_type, '(none)') AS device_type, coalesce(locale, '(none)') AS locale,
                   coalesce(public.app_version_text(app_version), '(none)') AS app_version, sum(logins) AS logins
            FROM login_groups
            GROUP BY GROUPING SETS ((device_type), (locale), (app_version))
        )
        INSERT INTO public.daily_login_stats
            (create_date, logins, users, devices, addresses, by_device_type, by_locale, by_app_version)
        SELECT %(day)s,
               (SELECT coalesce(sum(logins), 0) FROM login_groups),
               (SELECT count(*) FROM (SELECT DISTINCT user_id FROM login_groups) AS d),
               (SELECT count(*) FROM (SELECT DISTINCT masked_device_id FROM login_groups) AS d),
               (SELECT count(*) FROM (SELECT DISTINCT masked_ip FROM login_groups) AS d),
               coalesce((SELECT jsonb_object_agg(device_type, logins) FROM breakdown WHERE grouping_set = 3), '{}'),
               coalesce((SELECT jsonb_object_agg(locale, logins) FROM breakdown WHERE grouping_set = 5), '{}'),
               coalesce((SELECT jsonb_object_agg(app_version, logins) FROM breakdown WHERE grouping_set = 6), '{}')
    """,
    ),
    figures="SELECT logins, users, devices, addresses FROM public.daily_login_stats WHERE create_date = %(day)s",
    check="""
        SELECT abs(coalesce((SELECT logins FROM public.daily_login_stats WHERE create_date = %(day)s), -1)
                   - (SELECT count(*) FROM public.user_logins WHERE create_date = %(day)s))
    """,
    check_name="logins_match_user_logins",
    check_description="The day's logins equal that day's row count in user_logins.",
)


def _shared(name: str, column: str, lock: int) -> Table:
    """shared_devices / shared_addresses: the day's values of `column` used by >= min_users distinct users."""
    return Table(
        name=name,
        lock=lock,
        inserts=(
            f"""
            INSERT INTO public.{name} (create_date, {column}, users, logins, min_users)
            SELECT %(day)s, {column}, count(*), sum(logins), %(min_users)s
            FROM (SELECT {column}, user_id, sum(logins) AS logins FROM login_groups WHERE {column} IS NOT NULL
                  GROUP BY 1, 2) AS pairs
            GROUP BY {column}
            HAVING count(*) >= %(min_users)s
        """,
        ),
        figures=f"""
            SELECT count(*) AS {name}, coalesce(max(users), 0) AS most_users, coalesce(sum(logins), 0) AS logins
            FROM public.{name} WHERE create_date = %(day)s
        """,
        check=f"""
            SELECT count(*) FROM public.{name}
            WHERE create_date = %(day)s AND (users < min_users OR logins < users OR users < 2)
        """,
        check_name="every_value_is_shared",
        check_description=f"Every {column} listed for a day has at least min_users (>= 2) distinct users and "
        "at least one login per user.",
    )


SHARED_DEVICES = _shared("shared_devices", "masked_device_id", 2)
SHARED_ADDRESSES = _shared("shared_addresses", "masked_ip", 3)

NEW_DEVICE_LOGINS = Table(
    name="new_device_logins",
    lock=4,
    lock_every_day=True,  # a day's "later days invalidated" must see every other day's upserts committed
    invalidated=f"""
        SELECT DISTINCT seen.first_day FROM public.user_device_first_seen AS seen
        WHERE seen.first_day > %(day)s AND seen.pair IN (SELECT pair FROM {DAY_PAIRS} AS today)
        ORDER BY 1
    """,
    inserts=(
        f"""
        INSERT INTO public.user_device_first_seen (pair, first_day)
        SELECT pair, %(day)s::date FROM {DAY_PAIRS} AS today
        WHERE NOT EXISTS (SELECT 1 FROM public.user_device_first_seen AS seen
                          WHERE seen.pair = today.pair AND seen.first_day <= %(day)s)
        ON CONFLICT (pair) DO UPDATE SET first_day = excluded.first_day
    """,
        f"""
        INSERT INTO public.new_device_logins (create_date, message_id, user_id, masked_device_id, device_type, sent_at)
        SELECT %(day)s, login.message_id, login.user_id, login.masked_device_id, login.device_type, login.sent_at
        FROM login_day AS login
        JOIN (SELECT today.user_id, today.masked_device_id FROM {DAY_PAIRS} AS today
              JOIN public.user_device_first_seen AS seen USING (pair) WHERE seen.first_day = %(day)s) AS new
          USING (user_id, masked_device_id)
    """,
    ),
    figures="""
        SELECT count(*) AS new_device_logins, count(DISTINCT user_id) AS users_on_a_new_device
        FROM public.new_device_logins WHERE create_date = %(day)s
    """,
    check=f"""
        SELECT count(*) FROM public.new_device_logins AS listed
        JOIN public.user_device_first_seen AS seen ON seen.pair = {PAIR.format("listed")}
        WHERE listed.create_date = %(day)s AND seen.first_day < %(day)s
    """,
    check_name="devices_not_seen_before",
    check_description="No login listed for a day has a (user, device) pair first seen on an earlier day "
    "(fails while a refresh of an earlier day has made this day stale).",
)

APP_VERSION_ADOPTION = Table(
    name="app_version_adoption",
    lock=5,
    inserts=(
        """
        WITH version_users AS MATERIALIZED (
            SELECT DISTINCT app_version, user_id FROM login_groups WHERE app_version IS NOT NULL AND user_id IS NOT NULL
        ), day_users AS (SELECT count(*) AS users FROM (SELECT DISTINCT user_id FROM version_users) AS d)
        INSERT INTO public.app_version_adoption (create_date, app_version, app_version_text, users, share)
        SELECT %(day)s, app_version, public.app_version_text(app_version), count(*),
               round(count(*)::numeric / (SELECT users FROM day_users), 6)
        FROM version_users
        GROUP BY app_version
    """,
    ),
    figures="""
        SELECT count(*) AS versions, coalesce(max(share), 0)::float AS top_share
        FROM public.app_version_adoption WHERE create_date = %(day)s
    """,
    check="""
        SELECT count(*) FILTER (WHERE share <= 0 OR share > 1)
               + CASE WHEN count(*) = 0 AND EXISTS (SELECT 1 FROM public.user_logins WHERE create_date = %(day)s
                                                      AND app_version IS NOT NULL AND user_id IS NOT NULL)
                      THEN 1 ELSE 0 END
        FROM public.app_version_adoption WHERE create_date = %(day)s
    """,
    check_name="shares_are_fractions_of_the_day",
    check_description="Every share is in (0, 1], and a day with logins has at least one version.",
)

TABLES = {
    t.name: t for t in (DAILY_LOGIN_STATS, SHARED_DEVICES, SHARED_ADDRESSES, NEW_DEVICE_LOGINS, APP_VERSION_ADOPTION)
}
FIRST_SEEN = "user_device_first_seen"  # new_device_logins' own state, emptied with the tables by `reset`
MIN_USERS = {SHARED_DEVICES.name: DEVICE_MIN_USERS, SHARED_ADDRESSES.name: ADDRESS_MIN_USERS}


@dataclass
class Refreshed:
    rows: int
    figures: dict[str, float]
    later_days_invalidated: list[date] = field(default_factory=list)


def _use_memory(conn: psycopg.Connection) -> None:
    conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    try:  # only until the session's first temporary table; a second refresh on a connection keeps it
        with conn.transaction():
            conn.execute(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'")
    except psycopg.errors.InvalidParameterValue:
        pass


def refresh_day(
    conn: psycopg.Connection, tables: list[Table], day: date, min_users: dict[str, int] = MIN_USERS
) -> dict[str, Refreshed]:
    """Rewrite `day` of each of `tables` in one transaction; returns what each now holds for the day."""
    params = {"day": day}
    done = {}
    with conn.transaction():
        _use_memory(conn)
        for table in sorted(tables, key=lambda t: t.lock):  # always in the same order: no deadlock
            conn.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                (ANALYTICS_LOCK + table.lock, 0 if table.lock_every_day else day.toordinal()),
            )
        conn.execute(LOAD_DAY, params)
        conn.execute(GROUP_DAY)
        conn.execute("ANALYZE login_day, login_groups")
        for table in tables:
            table_params = {**params, "min_users": min_users.get(table.name)}
            conn.execute(f"DELETE FROM public.{table.name} WHERE create_date = %(day)s", params)
            invalidated = [d for (d,) in conn.execute(table.invalidated, params)] if table.invalidated else []
            for statement in table.inserts:
                rows = conn.execute(statement, table_params).rowcount
            done[table.name] = Refreshed(rows, figures(conn, table, day), invalidated)
    return done


def figures(conn: psycopg.Connection, table: Table, day: date) -> dict[str, float]:
    cursor = conn.execute(table.figures, {"day": day})
    row = cursor.fetchone()
    assert row is not None and cursor.description is not None, "a figures query returns one row"
    return {column.name: value for column, value in zip(cursor.description, row, strict=True)}


def offending_rows(conn: psycopg.Connection, table: Table, day: date) -> int:
    return int(scalar(conn, table.check, {"day": day}))


def days_written_since(conn: psycopg.Connection, seconds: float) -> list[date]:
    """The days of the rows inserted in the last `seconds` (ingested_at is the time of the inserting
    transaction, on the database's clock), through the BRIN index on ingested_at."""
    return [
        day
        for (day,) in conn.execute(
            "SELECT DISTINCT create_date FROM public.user_logins"
            " WHERE ingested_at >= now() - make_interval(secs => %s) ORDER BY 1",
            (seconds,),
        )
    ]


def logged_days(conn: psycopg.Connection) -> list[date]:
    """Every day user_logins has rows for (a walk of the create_date index, one probe per day)."""
    return [
        day
        for (day,) in conn.execute("""
        WITH RECURSIVE days AS (
            (SELECT create_date FROM public.user_logins WHERE create_date IS NOT NULL ORDER BY 1 LIMIT 1)
            UNION ALL
            SELECT (SELECT create_date FROM public.user_logins WHERE create_date > days.create_date ORDER BY 1 LIMIT 1)
            FROM days WHERE days.create_date IS NOT NULL
        )
        SELECT create_date FROM days WHERE create_date IS NOT NULL""")
    ]


FIGURES_OF_DAYS = """
    SELECT d.day::date, s.logins, s.users, s.devices, s.addresses,
           (SELECT count(*) FROM public.shared_devices WHERE create_date = d.day),
           (SELECT count(*) FROM public.shared_addresses WHERE create_date = d.day),
           (SELECT count(*) FROM public.new_device_logins WHERE create_date = d.day),
           (SELECT app_version_text || ' ' || round(share * 100, 1) || '%%' FROM public.app_version_adoption
            WHERE create_date = d.day ORDER BY share DESC, app_version DESC LIMIT 1)
    FROM unnest(%s::date[]) AS d(day) LEFT JOIN public.daily_login_stats AS s ON s.create_date = d.day
    ORDER BY 1
"""
FIGURE_COLUMNS = (
    "day",
    "logins",
    "users",
    "devices",
    "addresses",
    "shared devices",
    "shared addresses",
    "new-device logins",
    "top version (users)",
)


def day_figures_table(conn: psycopg.Connection, days: list[date]) -> str:
    """The figures of `days` from the analytics tables, as an aligned text table."""
    rows = [tuple("" if v is None else str(v) for v in row) for row in conn.execute(FIGURES_OF_DAYS, (days,))]
    widths = [max(len(str(c)) for c in column) for column in zip(FIGURE_COLUMNS, *rows, strict=True)]
    lines = ("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)) for row in [FIGURE_COLUMNS, *rows])
    return "\n".join(lines)
