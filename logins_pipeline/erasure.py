"""Erase one user everywhere the platform keeps them (docs/privacy.md "Erasure of one user"), as a logins_erasure login.

One transaction: the user's vault rows, rows of user_logins, quarantined messages, new-device logins and
first-seen pairs go; every day they had logins on is recomputed by the analytics' own refresh (so each day
equals a fresh computation without them); the user's keyed hash joins the suppression list, kept as long as
one of their messages can still be in the queues; an audit row records the hash (never the id), who asked,
why, and the rows removed per table. A kill at any point leaves all of it or none. The deleted rows' bytes
stay in the table files until `rewrite_pending` rewrites them (`erase --rewrite`, or the daily `retention`).
"""

from dataclasses import dataclass
from datetime import date

import psycopg
from psycopg.types.json import Jsonb

from logins_pipeline.analytics import MIN_USERS, SHARED_ADDRESSES, SHARED_DEVICES, TABLES, refresh_day
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.drain.failpoints import failpoint
from logins_pipeline.resources.erased_users import user_hash
from logins_pipeline.resources.postgres import scalar

PAIRS_OF_USER = "SELECT md5(user_id || '/' || masked_device_id)::uuid FROM public.{} WHERE user_id = %(user)s"
OTHER_RELATIONS = {"public.login_quarantine", "public.user_device_first_seen", *(f"public.{t}" for t in TABLES)}
# A quarantined body is the masked JSON object, with the user id as sent (core/quarantine.py).
QUARANTINED_OBJECT = """
    masked_body IS NOT NULL AND pg_input_is_valid(masked_body, 'jsonb') AND jsonb_typeof(masked_body::jsonb) = 'object'
"""
QUARANTINED_USER = "btrim(masked_body::jsonb ->> 'user_id')"
QUARANTINED_OF_USER = f"{QUARANTINED_OBJECT} AND {QUARANTINED_USER} = %(user)s"
USERS_BESIDE_LOGINS = f"""
    SELECT user_id FROM public.new_device_logins
    UNION SELECT {QUARANTINED_USER} FROM public.login_quarantine WHERE {QUARANTINED_OBJECT}
"""


@dataclass(frozen=True)
class Erasure:
    audit_id: int
    user_hash: str
    rows_removed: dict[str, int]
    days_recomputed: list[date]


def _count(conn: psycopg.Connection, sql: str, params: dict) -> int:
    return conn.execute(sql, params).rowcount


def _relations(conn: psycopg.Connection, user: str | None) -> list[str]:
    """The partitions holding the user's logins (and the vault's of the same days), and the other tables."""
    days = "SELECT DISTINCT create_date FROM public.user_logins WHERE user_id = %(user)s"
    partitions = conn.execute(
        f"""SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class AS c
            JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.oid IN (SELECT tableoid FROM public.user_logins WHERE user_id = %(user)s
                            UNION SELECT p.partition::regclass
                                  FROM public.logins_day_partitions('pii_vault.login_pii') AS p
                                  WHERE EXISTS (SELECT 1 FROM ({days}) AS d WHERE d.create_date >= p.first_day
                                                AND d.create_date < p.end_day)
                            UNION SELECT 'pii_vault.login_pii_default'::regclass)""",
        {"user": user},
    ).fetchall()
    return sorted({p for (p,) in partitions} | OTHER_RELATIONS)


def _min_users(conn: psycopg.Connection, day: date) -> dict[str, int]:
    """The thresholds the day's shared tables were computed with (each row records it), else the defaults."""
    recorded = {
        table.name: scalar(conn, f"SELECT min(min_users) FROM public.{table.name} WHERE create_date = %s", (day,))
        for table in (SHARED_DEVICES, SHARED_ADDRESSES)
    }
    return {name: recorded[name] or default for name, default in MIN_USERS.items()}


@dataclass(frozen=True)
class Request:
    reason: str
    requested_by: str
    keep_seconds: int  # how long the suppression lasts: the queues' retention + visibility timeout


def erase_user(conn: psycopg.Connection, key: MaskingKey, user_id: str, request: Request) -> Erasure:
    """Erase `user_id` in one transaction (see the module's docstring). Erasing an unknown user still
    suppresses and audits."""
    user = user_id.strip()
    return _erase(conn, key, user, user_hash(key, user), request)


def erase_user_by_hash(conn: psycopg.Connection, key: MaskingKey, hashed: str, request: Request) -> Erasure:
    """Erase the user whose hash (user_hash) is `hashed`: what the erase_user job is given, so that no user id
    reaches Dagster's run storage. The id is found by hashing every distinct user id the tables hold (a
    scan, as an erasure by id is: user_logins has no index on user_id); none found, it suppresses and audits."""
    found = None
    with conn.transaction(), conn.cursor(name="erasure_users") as cursor:
        cursor.execute(f"SELECT user_id FROM public.user_logins UNION {USERS_BESIDE_LOGINS}")
        for (user,) in cursor:
            if user and user_hash(key, user) == hashed:
                found = user.strip()
                break
    return _erase(conn, key, found, hashed, request)


def _erase(conn: psycopg.Connection, key: MaskingKey, user: str | None, hashed: str, request: Request) -> Erasure:
    params = {"user": user}  # None: nobody's rows (user_id = NULL is never true)
    with conn.transaction():
        days = [
            d
            for (d,) in conn.execute(
                "SELECT create_date FROM public.user_logins WHERE user_id = %(user)s"
                " UNION SELECT create_date FROM public.new_device_logins WHERE user_id = %(user)s ORDER BY 1",
                params,
            )
        ]
        relations = _relations(conn, user)
        removed = {
            "public.user_device_first_seen": _count(
                conn,
                "DELETE FROM public.user_device_first_seen WHERE pair IN ("
                + PAIRS_OF_USER.format("user_logins")
                + " UNION "
                + PAIRS_OF_USER.format("new_device_logins")
                + ")",
                params,
            ),
            "public.new_device_logins": _count(
                conn, "DELETE FROM public.new_device_logins WHERE user_id = %(user)s", params
            ),
            "public.login_quarantine": _count(
                conn, f"DELETE FROM public.login_quarantine WHERE {QUARANTINED_OF_USER}", params
            ),
            "pii_vault.login_pii": int(scalar(conn, "SELECT public.logins_erase_vault(%(user)s)", params)),
            "public.user_logins": _count(conn, "DELETE FROM public.user_logins WHERE user_id = %(user)s", params),
        }
        to_rewrite = relations if any(removed.values()) else []  # nothing removed, nothing to rewrite
        for day in days:
            conn.execute("DROP TABLE IF EXISTS pg_temp.login_day, pg_temp.login_groups")  # the previous day's
            refresh_day(conn, list(TABLES.values()), day, _min_users(conn, day))
        conn.execute(
            "INSERT INTO public.erasure_suppression (user_hash, masking_key_id, keep_until)"
            " VALUES (%s, %s, now() + make_interval(secs => %s))"
            " ON CONFLICT (user_hash) DO UPDATE SET keep_until = greatest("
            "   public.erasure_suppression.keep_until, excluded.keep_until)",
            (hashed, key.key_id, request.keep_seconds),
        )
        (audit_id,) = conn.execute(  # type: ignore[misc]
            "INSERT INTO public.erasure_audit"
            " (user_hash, masking_key_id, requested_by, reason, rows_removed, relations)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (hashed, key.key_id, request.requested_by, request.reason, Jsonb(removed), to_rewrite),
        ).fetchone()
        failpoint("erase_before_commit")
    return Erasure(audit_id, hashed, removed, days)
