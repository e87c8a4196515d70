"""The PII vault, the roles and the audited reveal, against the real local Postgres (and SQS).

As with `logins-pipeline up`, each test database has logins in the three group roles of migration 0002:
LOGINS_POSTGRES_DSN (logins_writer), LOGINS_ANALYST_DSN (analyst), LOGINS_PII_READER_DSN (pii_reader).
"""

import json
import os
import stat

import psycopg
import pytest

from logins_pipeline import settings
from logins_pipeline.analytics import TABLES as ANALYTICS_TABLES
from logins_pipeline.core.keys import development_key
from logins_pipeline.core.masking import parse_masking_key, pii_tokens
from logins_pipeline.core.pii_keys import PiiKeys
from logins_pipeline.core.transform import build_batch
from logins_pipeline.core.vault import VaultEntry
from logins_pipeline.drain.ingest import drain
from logins_pipeline.local.environment import LOGIN_ROLES
from logins_pipeline.resources.postgres import PostgresResource, write_batch
from logins_pipeline_tests.conftest import sample_events, sample_pii_values
from logins_pipeline_tests.integration.test_cli import assert_one_line_error, cli

pytestmark = pytest.mark.integration

VAULT_ROWS = "SELECT message_id, ip_ciphertext, device_id_ciphertext, vault_key_id FROM pii_vault.login_pii"


def bodies(count: int | None = None) -> list[str]:
    return [json.dumps(event) for event in sample_events()[:count]]


def connect(pipeline, variable: str) -> psycopg.Connection:
    return psycopg.connect(pipeline.env[variable], autocommit=True)


def writer(pipeline) -> PostgresResource:
    return PostgresResource(dsn=pipeline.env[settings.POSTGRES_DSN])


def ingest(pipeline, key=None, vault: bool = True) -> None:
    """Drain in this process, as the writer (faster than `logins-pipeline run`, which the CLI tests cover)."""
    drain(pipeline.sqs, writer(pipeline), PiiKeys(key or pipeline.key, pipeline.vault_key if vault else None))


def vault_originals(pipeline) -> dict[str, tuple[str, str]]:
    """message_id -> (ip, device_id), decrypted by the test with the vault key."""
    rows = pipeline.query(VAULT_ROWS)
    return {row[0]: pipeline.vault_key.open_login(VaultEntry(*row)) for row in rows}


def sample_pairs(count: int | None = None) -> set[tuple[str, str]]:
    return {(e["ip"], e["device_id"]) for e in sample_events()[:count] if "ip" in e}


def denied(conn: psycopg.Connection, sql: str, params=()) -> bool:
    try:
        conn.execute(sql, params)
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


# --- the vault is written with the rows --------------------------------------------------------------


def test_the_writer_stores_each_rows_originals_encrypted(pipeline):
    pipeline.seed(bodies())
    ingest(pipeline)

    originals = vault_originals(pipeline)
    assert set(originals) == {m for (m,) in pipeline.query("SELECT message_id FROM user_logins")}
    assert set(originals.values()) == sample_pairs()
    for message_id, (ip, device_id) in originals.items():
        assert pipeline.query(
            "SELECT masked_ip, masked_device_id FROM user_logins WHERE message_id = %s", (message_id,)
        ) == [pii_tokens(pipeline.key, ip, device_id)]
    stored = b"".join(bytes(c) for row in pipeline.query(VAULT_ROWS) for c in row[1:3])
    assert not [v for v in sample_pii_values() if v.encode() in stored]


def test_a_failure_before_commit_writes_no_vault_row_either(pipeline):
    pipeline.seed(bodies())
    with pipeline.postgres.connect() as conn:
        conn.execute(
            "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'x'; END $$;"
            "CREATE TRIGGER fail BEFORE INSERT ON user_logins EXECUTE FUNCTION fail()"
        )
    with pytest.raises(psycopg.errors.RaiseException):
        ingest(pipeline)
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii") == 0


def test_a_redelivered_batch_adds_no_vault_row(pipeline):
    pipeline.seed(bodies(10))
    messages = pipeline.sqs.receive_chunk(10, receivers=1).messages
    batch = build_batch(messages, PiiKeys(pipeline.key, pipeline.vault_key))
    with writer(pipeline).connect() as conn:
        first, again = write_batch(conn, batch), write_batch(conn, batch)
    assert (first.inserted, again.inserted, again.duplicates) == (10, 0, 10)
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii") == 10


def test_deleting_a_login_deletes_its_originals(pipeline):
    pipeline.seed(bodies(3))
    ingest(pipeline)
    with pipeline.postgres.connect() as conn:
        conn.execute("DELETE FROM user_logins WHERE message_id = (SELECT min(message_id) FROM user_logins)")
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii") == 2


# --- roles --------------------------------------------------------------------------------------------


def test_roles_see_what_they_should_and_nothing_more(pipeline):
    pipeline.seed(bodies(5))
    ingest(pipeline)
    message_id = pipeline.scalar("SELECT min(message_id) FROM user_logins")

    with connect(pipeline, settings.ANALYST_DSN) as analyst:
        assert analyst.execute("SELECT count(*) FROM user_logins_readable").fetchone() == (5,)
        assert denied(analyst, "SELECT * FROM pii_vault.login_pii")
        assert denied(analyst, "SELECT * FROM pii_vault.reveal_audit")
        assert denied(analyst, "SELECT * FROM pii_vault.reveal(%s, 'curious')", (message_id,))
        assert denied(analyst, "INSERT INTO user_logins (user_id) VALUES ('x')")
        for table in ANALYTICS_TABLES:
            assert analyst.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
            assert denied(analyst, f"DELETE FROM {table}")
    with connect(pipeline, settings.POSTGRES_DSN) as pipeline_writer:
        assert denied(pipeline_writer, "SELECT * FROM pii_vault.login_pii")
        assert denied(pipeline_writer, "SELECT * FROM pii_vault.reveal(%s, 'curious')", (message_id,))
        assert denied(pipeline_writer, "UPDATE user_logins SET user_id = 'x'")
        assert denied(pipeline_writer, "DELETE FROM user_logins")
        assert denied(pipeline_writer, "TRUNCATE login_quarantine")
        for table in ANALYTICS_TABLES:  # it rewrites a day (DELETE + INSERT), never alters rows in place
            assert denied(pipeline_writer, f"UPDATE {table} SET create_date = NULL")
    with connect(pipeline, settings.PII_READER_DSN) as reader:
        assert denied(reader, "SELECT * FROM pii_vault.login_pii")  # only through reveal(), audited
        assert (
            len(reader.execute("SELECT * FROM pii_vault.reveal(%s, 'support ticket 1')", (message_id,)).fetchall()) == 1
        )
        assert denied(reader, "UPDATE pii_vault.reveal_audit SET reason = 'nothing to see'")
        assert denied(reader, "DELETE FROM pii_vault.reveal_audit")
        assert denied(reader, "TRUNCATE pii_vault.reveal_audit")
        assert denied(reader, "INSERT INTO pii_vault.reveal_audit (action, reason) VALUES ('reveal', 'forged')")
    with pipeline.postgres.connect() as owner:  # append-only for the owner too
        for sql in ("UPDATE pii_vault.reveal_audit SET reason = 'x'", "DELETE FROM pii_vault.reveal_audit"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                owner.execute(sql)
    assert pipeline.query("SELECT action, message_id, reason FROM pii_vault.reveal_audit") == [
        ("reveal", message_id, "support ticket 1")
    ]


@pytest.mark.slow
def test_no_table_the_analyst_can_read_holds_a_sample_value(pipeline):
    assert cli("seed").returncode == 0
    ran = cli("run")
    assert ran.returncode == 0, ran.stderr
    assert cli("analytics").returncode == 0
    assert pipeline.scalar("SELECT count(*) FROM pii_vault.login_pii") == 99  # the vault is on (env from `up`)
    with connect(pipeline, settings.ANALYST_DSN) as analyst:
        readable = analyst.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')"
        ).fetchall()
        assert {name for (name,) in readable} == {
            "public.user_logins",
            "public.user_logins_readable",
            "public.login_quarantine",
            *(f"public.{table}" for table in ANALYTICS_TABLES),
        }
        dump = "\n".join(
            row[0] for (name,) in readable for row in analyst.execute(f"SELECT t::text FROM {name} t").fetchall()
        )
    assert dump.count("\n") > 190 + 99  # the analytics too: a new_device_logins row per sample login
    assert not [value for value in sample_pii_values() if value in dump]


# --- reveal -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reveal_as_pii_reader_prints_the_originals_and_appends_an_audit_row(pipeline):
    [event] = sample_events()[:1]
    pipeline.seed([json.dumps(event)])
    ingest(pipeline)
    message_id = pipeline.scalar("SELECT message_id FROM user_logins")

    result = cli("reveal", "--message-id", message_id, "--reason", "support ticket 4711")

    assert result.returncode == 0, result.stderr
    assert f"ip         {event['ip']}" in result.stdout
    assert f"device_id  {event['device_id']}" in result.stdout
    [(who, action, audited_id, reason, recent)] = pipeline.query(
        "SELECT who, action, message_id, reason, at > now() - interval '1 minute' FROM pii_vault.reveal_audit"
    )
    assert (who, action, audited_id, reason, recent) == (
        LOGIN_ROLES[settings.PII_READER_DSN][0],
        "reveal",
        message_id,
        "support ticket 4711",
        True,
    )


@pytest.mark.slow
def test_reveal_refusals_are_one_clear_line(pipeline):
    pipeline.seed(bodies(1))
    ingest(pipeline)
    message_id = pipeline.scalar("SELECT message_id FROM user_logins")

    assert_one_line_error(cli("reveal", "--message-id", "no-such-id", "--reason", "typo?"), "no entry", "audited")
    as_analyst = cli(
        "reveal",
        "--message-id",
        message_id,
        "--reason",
        "r",
        **{settings.PII_READER_DSN: pipeline.env[settings.ANALYST_DSN]},
    )
    assert_one_line_error(as_analyst, "permission denied")
    wrong_key = cli("reveal", "--message-id", message_id, "--reason", "r", **{settings.VAULT_KEY: development_key()})
    assert_one_line_error(wrong_key, "key id")
    blank = cli("reveal", "--message-id", message_id, "--reason", "  ")
    assert blank.returncode == 2 and "say why" in blank.stderr
    assert pipeline.query("SELECT message_id, reason FROM pii_vault.reveal_audit ORDER BY id") == [
        ("no-such-id", "typo?"),
        (message_id, "r"),
    ]  # the analyst got nothing and left nothing
    for output in (as_analyst, wrong_key):
        assert not [v for v in sample_pii_values() if v in output.stdout + output.stderr]


# --- rotation ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_rotate_tokens_remakes_old_rows_from_the_vault_under_the_new_key(pipeline):
    pipeline.seed(bodies(3))
    ingest(pipeline)  # key A, with the vault
    pipeline.seed(bodies(6)[3:])
    ingest(pipeline, vault=False)  # key A, no vault: these cannot be rotated
    new_key_text = development_key()
    new_key = parse_masking_key(new_key_text, development=True)

    rotated = cli(
        "rotate-tokens", "--reason", "yearly rotation", "--batch-size", "2", **{settings.MASKING_KEY: new_key_text}
    )

    assert rotated.returncode == 0, rotated.stderr
    assert f"rotated 3 rows to masking key {new_key.key_id}; 3 rows under other keys" in rotated.stdout
    originals = vault_originals(pipeline)
    for message_id, (ip, device_id) in originals.items():
        assert pipeline.query(
            "SELECT masked_ip, masked_device_id, masking_key_id FROM user_logins WHERE message_id = %s", (message_id,)
        ) == [(*pii_tokens(new_key, ip, device_id), new_key.key_id)]
    assert dict(pipeline.query("SELECT masking_key_id, count(*) FROM user_logins GROUP BY 1")) == {
        new_key.key_id: 3,
        pipeline.key.key_id: 3,
    }
    assert pipeline.query("SELECT action, message_id, reason FROM pii_vault.reveal_audit") == [
        ("rotate", None, "yearly rotation")
    ]
    again = cli("rotate-tokens", "--reason", "again", **{settings.MASKING_KEY: new_key_text})
    assert "rotated 0 rows" in again.stdout

    pipeline.seed(bodies(3))  # the same logins again, now under the new key: duplicates still match
    ingest(pipeline, new_key)
    assert pipeline.query(
        "SELECT count(*), count(DISTINCT (masked_ip, masked_device_id)) FROM user_logins WHERE masking_key_id = %s",
        (new_key.key_id,),
    ) == [(6, len(sample_pairs(3)))]


# --- keys and local set-up --------------------------------------------------------------------------


def test_a_development_vault_key_outside_development_refuses_to_run(pipeline):
    pipeline.seed(bodies(2))
    production_masking_key = development_key().removeprefix("dev:")
    result = cli("run", **{settings.ENVIRONMENT: "production", settings.MASKING_KEY: production_masking_key})
    assert_one_line_error(result, "LOGINS_VAULT_KEY is a development key")
    assert pipeline.sqs.queue_depth().visible == 2


@pytest.mark.parametrize("key, fragment", [("", "LOGINS_MASKING_KEY is not set"), ("c2hvcnQ=", "at least 32 bytes")])
def test_a_missing_or_short_masking_key_refuses_to_run(pipeline, key, fragment):
    pipeline.seed(bodies(1))
    assert_one_line_error(cli("run", **{settings.MASKING_KEY: key}), fragment)
    assert pipeline.sqs.queue_depth().visible == 1


def test_local_set_up_makes_private_dev_keys_and_role_logins(local_services):
    environment, env = local_services
    for path in (environment.key_file, environment.vault_key_file, environment.env_file):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert env[settings.VAULT_KEY].startswith("dev:") and env[settings.MASKING_KEY].startswith("dev:")
    assert env[settings.VAULT_KEY] != env[settings.MASKING_KEY]
    for variable, (login, group) in LOGIN_ROLES.items():
        with psycopg.connect(env[variable]) as conn:
            assert conn.execute(
                "SELECT current_user, pg_has_role(%s, 'MEMBER'), rolsuper FROM pg_roles WHERE rolname = current_user",
                (group,),
            ).fetchone() == (login, True, False)


def test_migrate_as_the_owner(pipeline):
    result = cli("migrate")
    assert result.returncode == 0 and "the schema is up to date" in result.stdout
