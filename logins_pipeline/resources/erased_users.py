"""What an erasure (logins_pipeline/erasure.py) leaves for the rest of the platform: the keyed hash an erased
user is known by, the suppression list the drain and `redrive` read, and the file rewrites still to do
(`erase --rewrite`, or the daily retention pass)."""

import json

import psycopg

from logins_pipeline.core.masking import MaskingKey, token
from logins_pipeline.resources.postgres import scalar

USER_HASH_DOMAIN = "erased user_id"
STATISTICS = "pg_catalog.pg_statistic"  # rewritten last: its dead rows keep old statistics' values


def user_hash(key: MaskingKey, user_id: str) -> str:
    """The keyed hash an erased user is known by (audit, suppression): no id, and nobody without the key
    can test a guess."""
    return token(key, USER_HASH_DOMAIN, user_id.strip())


def rewrite_pending(conn: psycopg.Connection) -> list[str]:
    """Rewrite the files of every relation an erasure deleted from and that is not rewritten yet, each in
    its own transaction, then pg_statistic (after the others' new statistics), and mark those erasures
    rewritten. `conn` in autocommit mode. Returns the relations rewritten."""
    pending = conn.execute("SELECT * FROM public.logins_pending_rewrites()").fetchall()
    if not pending:
        return []
    relations = sorted({relation for _, relation in pending if relation})
    rewrite = [*relations, STATISTICS] if relations else []  # an erasure that removed nothing has none
    done = [r for r in rewrite if scalar(conn, "SELECT public.logins_rewrite(%s)", (r,))]
    conn.execute("SELECT public.logins_rewrites_done(%s)", ([audit_id for audit_id, _ in pending],))
    return done


def suppressed_hashes(conn: psycopg.Connection, key: MaskingKey) -> frozenset[str]:
    """The hashes of the erased users whose messages are still to be deleted unread (under this key)."""
    return frozenset(
        h
        for (h,) in conn.execute(
            "SELECT user_hash FROM public.erasure_suppression WHERE masking_key_id = %s AND keep_until > now()",
            (key.key_id,),
        )
    )


def message_user_hash(body: str, key: MaskingKey) -> str | None:
    """The erasure hash of a message's user_id, or None when the body has no usable one (it is then
    stored or quarantined as usual; a quarantined body of an erased user is found by a later erasure)."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        return None
    user = event.get("user_id") if isinstance(event, dict) else None
    return user_hash(key, user) if isinstance(user, str) and user.strip() else None
