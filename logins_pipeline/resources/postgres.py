"""Postgres access (psycopg 3): connections, versioned migrations, and the one-transaction batch write."""

import os
import socket
from dataclasses import dataclass
from importlib import resources
from typing import Any, LiteralString

import dagster as dg
import numpy as np
import psycopg
from psycopg.abc import Params
from pydantic import Field

from logins_pipeline.core.schema import COLUMNS
from logins_pipeline.core.transform import Batch

MIGRATION_LOCK = 7_452_019  # pg_advisory_xact_lock key: concurrent runs apply migrations one at a time
QUARANTINE_COLUMNS = (
    "message_id",
    "reason",
    "detail",
    "masked_body",
    "body_bytes",
    "body_hmac",
    "sent_at",
    "receive_count",
    "masking_key_id",
)


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every file NNNN_name.sql shipped in resources/migrations, in order."""
    folder = resources.files("logins_pipeline.resources") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(int(f.name.split("_", 1)[0]), f.read_text()) for f in files]


def scalar(conn: psycopg.Connection, query: LiteralString, params: Params | None = None) -> Any:
    """The value of a query that returns one row of one column (a count, a lookup that yields NULL)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row[0]


def _recorded_versions(conn: psycopg.Connection) -> set[int]:
    if scalar(conn, "SELECT to_regclass('public.logins_schema_migrations')") is None:
        return set()
    return {version for (version,) in conn.execute("SELECT version FROM public.logins_schema_migrations")}


# First line of a migration that must run outside a transaction (CREATE INDEX CONCURRENTLY): its statements
# run one by one in autocommit mode. A statement ends at a line that starts unindented and ends with ";".
NO_TRANSACTION = "-- migration: no transaction"


def _statements(sql: str) -> list[str]:
    statements, lines = [], []
    for line in sql.splitlines():
        lines.append(line)
        if line[:1].strip() and not line.startswith("--") and line.rstrip().endswith(";"):
            statements.append("\n".join(lines))
            lines = []
    if "\n".join(lines).strip():
        statements.append("\n".join(lines))
    return statements


def _create_migrations_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS public.logins_schema_migrations"
        " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )


def _is_recorded(conn: psycopg.Connection, version: int) -> bool:
    found = conn.execute("SELECT 1 FROM public.logins_schema_migrations WHERE version = %s", (version,))
    return found.fetchone() is not None


def _record(conn: psycopg.Connection, version: int) -> None:
    conn.execute("INSERT INTO public.logins_schema_migrations (version) VALUES (%s)", (version,))


def _apply_in_transaction(conn: psycopg.Connection, version: int, sql: str) -> bool:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        _create_migrations_table(conn)
        if _is_recorded(conn, version):
            return False
        conn.execute(sql)
        _record(conn, version)
        return True


def _apply_without_transaction(conn: psycopg.Connection, version: int, sql: str) -> bool:
    """Each statement its own transaction, under the session's advisory lock. Every statement must be safe to
    run again: an interrupted migration is not recorded and runs again from its first statement."""
    statements = _statements(sql)
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        _create_migrations_table(conn)
        if _is_recorded(conn, version):
            return False
        for statement in statements:
            conn.execute(statement)
        _record(conn, version)
        return True
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def apply_migrations(conn: psycopg.Connection) -> list[int]:
    """Apply the migrations this database lacks, in order, each in its own transaction (or, if it says
    NO_TRANSACTION, each of its statements); returns those applied. `conn` must be in autocommit mode.

    With none missing it runs no DDL at all, so the pipeline's logins_writer role, which may not, can call it."""
    shipped = migrations()
    if {version for version, _ in shipped} <= _recorded_versions(conn):
        return []
    applied = []
    conn.execute("SET statement_timeout = 0")  # DDL on a big table may take longer than a write
    try:
        for version, sql in shipped:
            apply = _apply_without_transaction if sql.startswith(NO_TRANSACTION) else _apply_in_transaction
            if apply(conn, version, sql):
                applied.append(version)
    finally:
        conn.execute("RESET statement_timeout")  # the connection's own (PostgresResource.statement_timeout)
    return applied


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    duplicates: int
    quarantined: int  # newly quarantined; a redelivered quarantined message counts as a duplicate


def _copy_value_lists(batch: Batch) -> list[list[Any]]:
    """Column lists for COPY. Timestamps go as ISO text, converted by numpy in one call per column:
    iterating pandas timestamps row by row costs more than the whole COPY."""
    frame = batch.rows
    columns = []
    for name in COLUMNS:
        column = frame[name]
        if name == "create_date":
            values = np.datetime_as_string(column.to_numpy(dtype="datetime64[ms]"), unit="D").tolist()
        elif name == "sent_at":
            values = np.datetime_as_string(column.dt.tz_convert(None).to_numpy(), unit="ms", timezone="UTC").tolist()
        else:
            values = column.astype(object).where(column.notna(), None).tolist()  # NaN -> NULL
        columns.append(values)
    return columns


def _copy_rows(cur: psycopg.Cursor, table: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_rows(conn: psycopg.Connection, cur: psycopg.Cursor, batch: Batch) -> int:
    """Store the valid rows; returns how many were new.

    Rows are new unless their messages came before (a redelivery, or a run that died between COMMIT and
    delete), so they are first COPied straight into user_logins. If one was stored before, the COPY fails
    on the unique (message_id, create_date) and is undone (Postgres logs that error, with the message id),
    and the rows go through a staging table and INSERT ... ON CONFLICT DO NOTHING instead: a redelivered
    message (same id, same create_date: core/origin.py) is a no-op. The straight COPY saves Postgres half its
    work on the usual chunk. ON CONFLICT names no target: it holds on the unpartitioned table too, whose
    unique key is message_id, while migrations 0004-0007 turn it into the partitioned one beside a drain."""
    rows = list(zip(*_copy_value_lists(batch), strict=True))
    try:
        with conn.transaction():  # a savepoint
            _copy_rows(cur, "public.user_logins", rows)
        return len(rows)
    except psycopg.errors.UniqueViolation:
        pass
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS user_logins_staging"
        " (LIKE public.user_logins INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    _copy_rows(cur, "user_logins_staging", rows)
    column_list = ", ".join(COLUMNS)
    cur.execute(
        f"INSERT INTO public.user_logins ({column_list}) SELECT {column_list} FROM user_logins_staging"
        " ON CONFLICT DO NOTHING"
    )
    return cur.rowcount


def write_batch(conn: psycopg.Connection, batch: Batch) -> WriteResult:
    """Valid rows, their vault rows and quarantined rows in one transaction; a redelivered message is a
    no-op."""
    with conn.transaction(), conn.cursor() as cur:
        inserted = _insert_rows(conn, cur, batch)
        if batch.vault:  # after the rows: each vault row references its login (message_id, create_date)
            # ON CONFLICT without a target: naming the key's columns would need SELECT on them, and
            # logins_writer may only INSERT into the vault.
            day_of = dict(zip(batch.rows["message_id"], batch.rows["create_date"].dt.date, strict=True))
            cur.execute(
                "INSERT INTO pii_vault.login_pii"
                " (message_id, create_date, ip_ciphertext, device_id_ciphertext, vault_key_id)"
                # binary parameters: bytea as is
                " SELECT * FROM unnest(%b::varchar[], %b::date[], %b::bytea[], %b::bytea[], %b::varchar[])"
                " ON CONFLICT DO NOTHING",
                [
                    list(column)
                    for column in zip(
                        *((e.message_id, day_of[e.message_id], e.ip, e.device_id, e.key_id) for e in batch.vault),
                        strict=True,
                    )
                ],
            )
        quarantined = 0
        if batch.rejections:
            placeholders = ", ".join(["%s"] * len(QUARANTINE_COLUMNS))
            cur.executemany(
                f"INSERT INTO public.login_quarantine ({', '.join(QUARANTINE_COLUMNS)}) VALUES ({placeholders})"
                " ON CONFLICT (message_id) DO NOTHING",
                [tuple(getattr(r, c) for c in QUARANTINE_COLUMNS) for r in batch.rejections],
                returning=False,
            )
            quarantined = cur.rowcount
    received = len(batch.rows) + len(batch.rejections)
    return WriteResult(inserted=inserted, duplicates=received - inserted - quarantined, quarantined=quarantined)


class PostgresResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # it provides itself
    """Every wait on the server is bounded: the server cancels a statement after `statement_timeout`, and the
    kernel closes a connection whose peer stops answering (keepalive probes while idle, `tcp_user_timeout`
    while data waits to be acknowledged), so a failover or a network partition fails the call instead of
    hanging it. A server that accepts the bytes and never answers (a backend stopped, a proxy that hangs) is
    bounded by the caller: the drain aborts the connection (`abort`) after its stall timeout."""

    dsn: str = Field(description="libpq connection string or URI (LOGINS_POSTGRES_DSN)")
    connect_timeout: int = Field(default=10, description="Seconds to wait for a connection")
    statement_timeout: int = Field(
        default=120, ge=0, description="Seconds a statement may run before the server cancels it (0: no limit)"
    )
    keepalives_idle: int = Field(default=10, ge=1, description="Seconds idle before the first TCP keepalive probe")
    keepalives_interval: int = Field(default=5, ge=1, description="Seconds between unanswered keepalive probes")
    keepalives_count: int = Field(default=3, ge=1, description="Unanswered keepalive probes that close the connection")
    tcp_user_timeout: int = Field(
        default=30, ge=0, description="Seconds sent data may stay unacknowledged before the connection closes"
    )

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(
            self.dsn,
            connect_timeout=self.connect_timeout,
            application_name="logins_pipeline",
            autocommit=True,
            options=f"-c statement_timeout={self.statement_timeout * 1000}",
            keepalives=1,
            keepalives_idle=self.keepalives_idle,
            keepalives_interval=self.keepalives_interval,
            keepalives_count=self.keepalives_count,
            tcp_user_timeout=self.tcp_user_timeout * 1000,
        )


def write_refusal(conn: psycopg.Connection, vault: bool) -> str | None:
    """Why this connection cannot store a batch (a read-only server, a missing INSERT grant), or None: asked
    before a run receives anything, so that a database refusing every write costs no message a receive."""
    if scalar(conn, "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"):
        return "the server is read-only (a standby, or default_transaction_read_only)"
    tables = ["public.user_logins", "public.login_quarantine", *(["pii_vault.login_pii"] if vault else [])]
    for table in tables:
        if not scalar(conn, "SELECT has_table_privilege(%s, 'INSERT')", (table,)):
            return f"{scalar(conn, 'SELECT current_user')} may not INSERT into {table}"
    return None


def abort(conn: psycopg.Connection) -> None:
    """Shut the connection's socket down from any thread: a call blocked on it returns at once with an
    OperationalError, whatever the server or the network does (psycopg's cancel would need the server)."""
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        sock.shutdown(socket.SHUT_RDWR)
