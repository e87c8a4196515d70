"""Daily login analytics, computed in Postgres from user_logins one day (create_date, UTC) at a time.

Each table is rewritten for a day in one transaction (DELETE that day, INSERT it again), so materializing
a day twice gives the same rows, and a reader sees the old day or the new one, never half of either. An
advisory lock per (table, day) makes two refreshes of the same day wait for each other instead of
colliding on the primary key. The SQL avoids count(DISTINCT ...) over a whole day where it can: DISTINCT in
a subquery is hashed, a distinct aggregate is sorted.
"""

from dataclasses import dataclass
from datetime import date

import psycopg

# The default thresholds of shared_devices / shared_addresses (README "Analytics" says why): a device used
# by 3 or more distinct users in a day, an address by 10 or more.
DEVICE_MIN_USERS = 3
ADDRESS_MIN_USERS = 10
# Sorts and hashes over a million rows of a day stay in memory (the default 4 MB spills them to disk).
WORK_MEM = "256MB"
ANALYTICS_LOCK = 7_452_020  # pg_advisory_xact_lock(ANALYTICS_LOCK + table, day): one refresh of a day at a time

_DAY = "FROM public.user_logins WHERE create_date = %(day)s"


@dataclass(frozen=True)
class Table:
    name: str
    lock: int  # the table's advisory lock class is ANALYTICS_LOCK + this
    insert: str  # SQL inserting the day's rows; parameters %(day)s and, if it has one, %(min_users)s
    figures: str  # SQL giving one row of numbers about the day, for the materialization's metadata
    check: str  # SQL counting the day's offending rows (0: the check passes)
    check_name: str
    check_description: str


DAILY_LOGIN_STATS = Table(
    name="daily_login_stats",
    lock=1,
    insert=f"""
        WITH breakdown AS (
            SELECT GROUPING(device_type, locale, app_version) AS grouping_set,
                   coalesce(device_type, '(none)') AS device_type, coalesce(locale, '(none)') AS locale,
                   coalesce(public.app_version_text(app_version), '(none)') AS app_version, count(*) AS logins
            {_DAY}
            GROUP BY GROUPING SETS ((device_type), (locale), (app_version))
        )
        INSERT INTO public.daily_login_stats
            (create_date, logins, users, devices, addresses, by_device_type, by_locale, by_app_version)
        SELECT %(day)s,
               (SELECT count(*) {_DAY}),
               (SELECT count(*) FROM (SELECT DISTINCT user_id {_DAY}) AS d),
               (SELECT count(*) FROM (SELECT DISTINCT masked_device_id {_DAY}) AS d),
               (SELECT count(*) FROM (SELECT DISTINCT masked_ip {_DAY}) AS d),
               coalesce((SELECT jsonb_object_agg(device_type, logins) FROM breakdown WHERE grouping_set = 3), '{{}}'),
               coalesce((SELECT jsonb_object_agg(locale, logins) FROM breakdown WHERE grouping_set = 5), '{{}}'),
               coalesce((SELECT jsonb_object_agg(app_version, logins) FROM breakdown WHERE grouping_set = 6), '{{}}')
    """,
    figures="SELECT logins, users, devices, addresses FROM public.daily_login_stats WHERE create_date = %(day)s",
    check=f"""
        SELECT abs(coalesce((SELECT logins FROM public.daily_login_stats WHERE create_date = %(day)s), -1)
                   - (SELECT count(*) {_DAY}))
    """,
    check_name="logins_match_user_logins",
    check_description="The day's logins equal that day's row count in user_logins.",
)


def _shared(name: str, column: str, lock: int) -> Table:
    """shared_devices / shared_addresses: the day's values of `column` used by >= min_users distinct users."""
    return Table(
        name=name,
        lock=lock,
        insert=f"""
            INSERT INTO public.{name} (create_date, {column}, users, logins, min_users)
            SELECT %(day)s, {column}, count(*), sum(logins), %(min_users)s
            FROM (SELECT {column}, user_id, count(*) AS logins {_DAY} AND {column} IS NOT NULL GROUP BY 1, 2) AS pairs
            GROUP BY {column}
            HAVING count(*) >= %(min_users)s
        """,
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

_EARLIER_DAY = """
    SELECT 1 FROM public.user_logins AS earlier
    WHERE earlier.user_id = {0}.user_id AND earlier.masked_device_id = {0}.masked_device_id
      AND earlier.create_date < %(day)s
"""

NEW_DEVICE_LOGINS = Table(
    name="new_device_logins",
    lock=4,
    insert=f"""
        INSERT INTO public.new_device_logins (create_date, message_id, user_id, masked_device_id, device_type, sent_at)
        SELECT create_date, message_id, user_id, masked_device_id, device_type, sent_at
        FROM public.user_logins AS login
        WHERE create_date = %(day)s AND user_id IS NOT NULL AND masked_device_id IS NOT NULL
          AND NOT EXISTS ({_EARLIER_DAY.format("login")})
    """,
    figures="""
        SELECT count(*) AS new_device_logins, count(DISTINCT user_id) AS users_on_a_new_device
        FROM public.new_device_logins WHERE create_date = %(day)s
    """,
    check=f"""
        SELECT count(*) FROM public.new_device_logins AS listed
        WHERE create_date = %(day)s AND EXISTS ({_EARLIER_DAY.format("listed")})
    """,
    check_name="devices_not_seen_before",
    check_description="No login listed for a day has a (user, device) pair that user_logins holds on an "
    "earlier day (fails if a late login for an earlier day made the day stale).",
)

APP_VERSION_ADOPTION = Table(
    name="app_version_adoption",
    lock=5,
    insert=f"""
        WITH day_users AS (SELECT count(*) AS users FROM (SELECT DISTINCT user_id {_DAY}) AS d)
        INSERT INTO public.app_version_adoption (create_date, app_version, app_version_text, users, share)
        SELECT %(day)s, app_version, public.app_version_text(app_version), count(*),
               round(count(*)::numeric / (SELECT users FROM day_users), 6)
        FROM (SELECT DISTINCT app_version, user_id {_DAY} AND app_version IS NOT NULL AND user_id IS NOT NULL) AS v
        GROUP BY app_version
    """,
    figures="""
        SELECT count(*) AS versions, coalesce(max(share), 0)::float AS top_share
        FROM public.app_version_adoption WHERE create_date = %(day)s
    """,
    check=f"""
        SELECT count(*) FILTER (WHERE share <= 0 OR share > 1)
               + CASE WHEN count(*) = 0 AND EXISTS (SELECT 1 {_DAY} AND app_version IS NOT NULL) THEN 1 ELSE 0 END
        FROM public.app_version_adoption WHERE create_date = %(day)s
    """,
    check_name="shares_are_fractions_of_the_day",
    check_description="Every share is in (0, 1], and a day with logins has at least one version.",
)

TABLES = {t.name: t for t in (DAILY_LOGIN_STATS, SHARED_DEVICES, SHARED_ADDRESSES, NEW_DEVICE_LOGINS,
                              APP_VERSION_ADOPTION)}


def refresh_day(conn: psycopg.Connection, table: Table, day: date, min_users: int | None = None) -> dict[str, float]:
    """Rewrite `day` of `table` in one transaction; returns the day's figures and `rows` written."""
    params = {"day": day, "min_users": min_users}
    with conn.transaction():
        conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ANALYTICS_LOCK + table.lock, day.toordinal()))
        conn.execute(f"DELETE FROM public.{table.name} WHERE create_date = %(day)s", params)
        rows = conn.execute(table.insert, params).rowcount
    return {"rows": rows, **figures(conn, table, day)}


def figures(conn: psycopg.Connection, table: Table, day: date) -> dict[str, float]:
    cursor = conn.execute(table.figures, {"day": day})
    row = cursor.fetchone()
    return {column.name: value for column, value in zip(cursor.description, row)}


def offending_rows(conn: psycopg.Connection, table: Table, day: date) -> int:
    return conn.execute(table.check, {"day": day}).fetchone()[0]


def days_written_since(conn: psycopg.Connection, since) -> tuple[list[date], list[date]]:
    """The days of the rows inserted at or after `since` (a database timestamp), and the later days whose
    new_device_logins those rows invalidate: a login for an earlier day makes its (user, device) pair no
    longer new on the later days it appears on. Rows for today (UTC) have no later day, so only late rows
    pay for that lookup."""
    written = [day for (day,) in conn.execute(
        "SELECT DISTINCT create_date FROM public.user_logins WHERE ingested_at >= %s ORDER BY 1", (since,))]
    later = [day for (day,) in conn.execute(
        """
        SELECT DISTINCT later.create_date
        FROM public.user_logins AS late
        JOIN public.user_logins AS later
          ON later.user_id = late.user_id AND later.masked_device_id = late.masked_device_id
         AND later.create_date > late.create_date
        WHERE late.ingested_at >= %s AND late.create_date < (now() AT TIME ZONE 'UTC')::date
        ORDER BY 1
        """, (since,))]
    return written, later


def logged_days(conn: psycopg.Connection) -> list[date]:
    """Every day user_logins has rows for (a walk of the create_date index, one probe per day)."""
    return [day for (day,) in conn.execute("""
        WITH RECURSIVE days AS (
            (SELECT create_date FROM public.user_logins WHERE create_date IS NOT NULL ORDER BY 1 LIMIT 1)
            UNION ALL
            SELECT (SELECT create_date FROM public.user_logins WHERE create_date > days.create_date ORDER BY 1 LIMIT 1)
            FROM days WHERE days.create_date IS NOT NULL
        )
        SELECT create_date FROM days WHERE create_date IS NOT NULL""")]


FIGURES_OF_DAYS = """
    SELECT d.day::date, s.logins, s.users, s.devices, s.addresses,
           (SELECT count(*) FROM public.shared_devices WHERE create_date = d.day),
           (SELECT count(*) FROM public.shared_addresses WHERE create_date = d.day),
           (SELECT count(*) FROM public.new_device_logins WHERE create_date = d.day),
           (SELECT app_version_text || ' ' || round(share * 100) || '%%' FROM public.app_version_adoption
            WHERE create_date = d.day ORDER BY share DESC, app_version DESC LIMIT 1)
    FROM unnest(%s::date[]) AS d(day) LEFT JOIN public.daily_login_stats AS s ON s.create_date = d.day
    ORDER BY 1
"""
FIGURE_COLUMNS = ("day", "logins", "users", "devices", "addresses", "shared devices", "shared addresses",
                  "new-device logins", "top version (users)")


def day_figures_table(conn: psycopg.Connection, days: list[date]) -> str:
    """The figures of `days` from the analytics tables, as an aligned text table."""
    rows = [tuple("" if v is None else str(v) for v in row) for row in conn.execute(FIGURES_OF_DAYS, (days,))]
    widths = [max(len(str(c)) for c in column) for column in zip(FIGURE_COLUMNS, *rows)]
    return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(row, widths)) for row in [FIGURE_COLUMNS, *rows])
