"""Erasure of one user (issue 22, docs/privacy.md "Erasure"), proven by searching every store for what is
left of them rather than by counting what the code meant to delete: the dumps of the data database and of
Dagster's (the shipped dagster.yaml: Postgres storage), the files under DAGSTER_HOME, the runs' and commands'
logs, the queues, and after the rewrite the data directory's relation files."""

import json
import logging
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from logins_pipeline import analytics, settings
from logins_pipeline.cli.backdate import send_dated
from logins_pipeline.core.masking import pii_tokens
from logins_pipeline.defs.logins.assets import IngestConfig, ingest_logins, user_logins
from logins_pipeline.defs.maintenance.erasure import EraseConfig, erase_user_job
from logins_pipeline.erasure import Erasure, Request, erase_user
from logins_pipeline.local.services import _pgserver_bin
from logins_pipeline.resources.erased_users import user_hash
from logins_pipeline.resources.postgres import PostgresResource
from logins_pipeline.resources.vault import VaultResource
from logins_pipeline.retention import RetentionPolicy, run_retention
from logins_pipeline_tests.integration.test_cli import cli

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
U_DAYS = (1, 2, 3)  # days ago with logins of the erased user
OTHERS_ONLY_DAY = 4
SHARED_DAY = 2  # the shared device is used by exactly DEVICE_MIN_USERS users that day, the erased one too
AGGREGATES = (*analytics.TABLES, analytics.FIRST_SEEN)


class World:
    """Seeded through the queue and a real ingest run: the erased user, four others, the analytics."""

    def __init__(self, pipeline, instance, dagster_dsn: str):
        self.pipeline, self.instance, self.dagster_dsn = pipeline, instance, dagster_dsn
        self.run_ids: list[str] = []  # of the Dagster runs, recorded in dagster_dsn's database
        self.user = str(uuid.uuid4())
        self.ip = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
        self.device = f"dev-{uuid.uuid4().hex}"
        self.shared = f"shared-{uuid.uuid4().hex}"
        self.others = [f"other-{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]

    def body(self, user: str, ip: str, device: str, version: str = "2.1.0") -> str:
        return json.dumps(
            {"user_id": user, "app_version": version, "device_type": "ios", "ip": ip, "device_id": device}
        )

    def user_body(self, version: str = "2.1.0") -> str:
        return self.body(self.user, self.ip, self.device, version)

    def seed(self) -> None:
        p = self.pipeline
        days = sorted({*U_DAYS, OTHERS_ONLY_DAY})
        p.query("SELECT logins_create_day(day) FROM unnest(%s::date[]) AS day", ([self.day(a) for a in days],))
        sent = [(self.user_body(), age) for age in U_DAYS] + [
            (self.body(self.user, self.ip, self.shared), SHARED_DAY),
            *(
                (self.body(o, f"10.9.{n}.{age}", f"d-{o}", f"2.{n}.0"), age)
                for n, o in enumerate(self.others)
                for age in days
            ),
            *(
                (self.body(o, "10.8.0.1", self.shared), SHARED_DAY)
                for o in self.others[: analytics.DEVICE_MIN_USERS - 1]
            ),
            (self.user_body("1.2.3.4"), 0),  # quarantined: invalid_app_version
            (self.body(self.others[0], "10.7.0.1", "d-q", "x"), 0),  # another's quarantined message, kept
        ]
        bodies, ages = zip(*sent, strict=True)
        assert send_dated(p.sqs, p.key, list(bodies), list(ages), NOW) == 0
        self.ingest()
        assert p.scalar("SELECT count(*) FROM pii_vault.login_pii") == p.scalar("SELECT count(*) FROM user_logins")
        with p.postgres.connect() as conn:
            for day in analytics.logged_days(conn):
                analytics.refresh_day(conn, list(analytics.TABLES.values()), day)
        assert p.scalar("SELECT count(*) FROM login_quarantine WHERE masked_body LIKE %s", (f"%{self.user}%",)) == 1
        assert self.shared_listed()

    def ingest(self) -> dict:
        """A Dagster run of ingest_logins, as the writer login, with the vault on; user_logins' metadata."""
        env = self.pipeline.env
        result = dg.materialize(
            [ingest_logins],
            instance=self.instance,
            resources={
                **self.pipeline.resources(),
                "postgres": PostgresResource(dsn=env[settings.POSTGRES_DSN]),
                "vault": VaultResource(key=env[settings.VAULT_KEY], environment="development"),
            },
            run_config=dg.RunConfig(ops={ingest_logins.op.name: IngestConfig(build_processes=0, receivers=1)}),
        )
        self.run_ids.append(result.run_id)
        (materialization,) = [
            m for m in result.asset_materializations_for_node(ingest_logins.op.name) if m.asset_key == user_logins.key
        ]
        return {k: v.value for k, v in materialization.metadata.items()}

    @staticmethod
    def day(age: int):
        return (NOW - timedelta(days=age)).date()

    def shared_listed(self) -> bool:
        (_, token) = pii_tokens(self.pipeline.key, "10.8.0.1", self.shared)
        return bool(self.pipeline.query("SELECT 1 FROM shared_devices WHERE masked_device_id = %s", (token,)))

    def needles(self) -> dict[str, bytes]:
        ip_token, device_token = pii_tokens(self.pipeline.key, self.ip, self.device)
        return {
            "user id": self.user.encode(),
            "ip": self.ip.encode(),
            "device id": self.device.encode(),
            "ip token": ip_token.encode(),
            "device token": device_token.encode(),
        }

    def others_state(self) -> dict:
        """The other users' rows, originals and new-device rows, and the aggregates of a day without them."""
        p, others_day = self.pipeline, self.day(OTHERS_ONLY_DAY)
        return {
            "rows": p.query("SELECT * FROM user_logins WHERE user_id <> %s ORDER BY message_id", (self.user,)),
            "vault": p.query(
                "SELECT v.* FROM pii_vault.login_pii AS v JOIN user_logins AS u USING (message_id, create_date)"
                " WHERE u.user_id <> %s ORDER BY message_id",
                (self.user,),
            ),
            "new devices": p.query(
                "SELECT * FROM new_device_logins WHERE user_id <> %s ORDER BY message_id", (self.user,)
            ),
            "quarantine": p.query("SELECT * FROM login_quarantine WHERE masked_body NOT LIKE %s", (f"%{self.user}%",)),
            **{
                table: p.query(f"SELECT * FROM {table} WHERE create_date = %s ORDER BY 2", (others_day,))
                for table in analytics.TABLES
            },
        }

    def erase_here(self) -> Erasure:
        """The command's erasure in this process (quicker than the command, for the tests about what follows)."""
        with psycopg.connect(self.pipeline.env[settings.ERASURE_DSN], autocommit=True) as conn:
            return erase_user(conn, self.pipeline.key, self.user, Request("DSR-1234", "dpo", 3600))

    def erase(self, *extra: str, **env: str) -> subprocess.CompletedProcess:
        return cli("erase", "--user-id", self.user, "--reason", "DSR-1234", "--requested-by", "dpo", *extra, **env)


@pytest.fixture
def world(pipeline, postgres_instance, instance_dsn, caplog, capfd) -> World:
    """Seeded; caplog and capfd hold what its runs log from the seeding one on (run_logs)."""
    caplog.set_level(logging.INFO)
    seeded = World(pipeline, postgres_instance, instance_dsn)
    seeded.seed()
    return seeded


def aggregates(pipeline) -> dict[str, list]:
    """Every row of the analytics, but when it was computed."""
    return {t: pipeline.query(f"SELECT to_jsonb(t) - 'computed_at' FROM {t} AS t ORDER BY 1") for t in AGGREGATES}


def fresh_aggregates(pipeline) -> dict[str, list]:
    """The analytics computed from scratch over what user_logins holds now, day by day in order."""
    with pipeline.postgres.connect() as conn:
        conn.execute(f"TRUNCATE {', '.join(AGGREGATES)}")
        for day in analytics.logged_days(conn):
            analytics.refresh_day(conn, list(analytics.TABLES.values()), day)
    return aggregates(pipeline)


def found_in(data: bytes, needles: dict[str, bytes]) -> set[str]:
    return {name for name, needle in needles.items() if needle in data}


def found_in_files(folder: Path, needles: dict[str, bytes], skip=lambda parts: False) -> dict[str, set[str]]:
    """The files under `folder` (but those whose path parts `skip` says to leave) that hold a needle."""
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and not skip(path.relative_to(folder).parts):
            try:
                hits = found_in(path.read_bytes(), needles)
            except (FileNotFoundError, PermissionError):
                continue  # a temporary file gone meanwhile
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def relations(pipeline, found: dict[str, set[str]]) -> dict[str, set[str]]:
    """The files found, named by their relation where one of this database has them."""
    names = dict(
        pipeline.query(
            "SELECT format('base/%%s/%%s', (SELECT oid FROM pg_database WHERE datname = current_database()),"
            " pg_relation_filenode(oid)), oid::regclass::text FROM pg_class WHERE pg_relation_filenode(oid) IS NOT NULL"
        )
    )
    return {
        names.get(path.split(".")[0].removesuffix("_fsm").removesuffix("_vm"), path): hits
        for path, hits in found.items()
    }


def relation_files_holding(world: World) -> dict[str, set[str]]:
    """The files of the data directory that hold the user's id, ip or device id, by relation: all but pg_wal
    and the other databases' (other tests' data, in a suite that shares the server)."""
    pipeline, needles = world.pipeline, world.needles()
    with pipeline.postgres.connect() as conn:
        conn.execute("CHECKPOINT")  # what is in shared buffers only is on disk too before the files are read
    own = str(pipeline.scalar("SELECT oid FROM pg_database WHERE datname = current_database()"))
    plaintext = {k: needles[k] for k in ("user id", "ip", "device id")}

    def others(parts: tuple[str, ...]) -> bool:
        return parts[0] == "pg_wal" or (parts[0] == "base" and len(parts) > 2 and parts[1] != own)

    return relations(pipeline, found_in_files(pipeline.postgres_data_dir, plaintext, skip=others))


def dump(dsn: str) -> bytes:
    return subprocess.run(
        [str(_pgserver_bin() / "pg_dump"), "--data-only", "--dbname", dsn], capture_output=True, check=True
    ).stdout


def data_state(pipeline) -> list[bytes]:
    """The data database's dump but the sequences' positions (a killed transaction's nextval stays)."""
    lines = dump(pipeline.postgres.dsn).splitlines()
    return [line for line in lines if not line.startswith(b"SELECT pg_catalog.setval(")]


def queue_bodies(pipeline) -> bytes:
    client = pipeline.sqs.client()
    bodies = []
    for url in (pipeline.sqs.queue_url, pipeline.sqs.dead_letter_url(client)):
        for m in pipeline.sqs.receive(client, 100, 1, queue_url=url):
            bodies.append(m.body)
    return "\n".join(bodies).encode()


def run_logs(caplog, capfd, *commands: subprocess.CompletedProcess) -> bytes:
    """What the test's runs (the seeding one on) and `commands` logged: Python logging, this process's
    stdout/stderr, the commands' output."""
    records = caplog.get_records("setup") + caplog.get_records("call")
    captured = capfd.readouterr()
    outputs = [text for command in commands for text in (command.stdout, command.stderr)]
    return "\n".join([*map(caplog.handler.format, records), captured.out, captured.err, *outputs]).encode()


def left_of_the_user(world: World, logs: bytes) -> dict[str, set[str]]:
    """Which of the user's needles each store still holds (the stores that hold none left out). The searches
    are of the right places: Dagster's database holds every run of the test, the logs the seeding run's."""
    pipeline, needles = world.pipeline, world.needles()
    dagster = dump(world.dagster_dsn)
    assert all(run_id.encode() in dagster for run_id in world.run_ids) and b"drained 24 messages" in logs
    found = {
        "data database": found_in(dump(pipeline.postgres.dsn), needles),
        "Dagster's database": found_in(dagster, needles),
        "logs": found_in(logs, needles),
        "queues": found_in(queue_bodies(pipeline), needles),
        **{f"DAGSTER_HOME/{path}": hits for path, hits in found_in_files(pipeline.dagster_home, needles).items()},
    }
    return {store: hits for store, hits in found.items() if hits}


@pytest.mark.slow  # a Dagster run, the erase command, searches of every store
def test_erase_leaves_nothing_of_the_user_in_any_store_and_the_others_unchanged(world, caplog, capfd):
    pipeline = world.pipeline
    before = world.others_state()

    result = world.erase("--rewrite")

    assert result.returncode == 0, result.stderr
    assert left_of_the_user(world, run_logs(caplog, capfd, result)) == {}
    assert relation_files_holding(world) == {}

    assert not world.shared_listed()  # used by one user fewer than the threshold now
    assert world.others_state() == before
    assert aggregates(pipeline) == fresh_aggregates(pipeline)
    ((hashed, requested_by, reason, removed, rewritten),) = pipeline.query(
        "SELECT user_hash, requested_by, reason, rows_removed, rewritten_at IS NOT NULL FROM erasure_audit"
    )
    assert (hashed, requested_by, reason, rewritten) == (user_hash(pipeline.key, world.user), "dpo", "DSR-1234", True)
    assert removed == {
        "public.user_logins": 4,
        "pii_vault.login_pii": 4,
        "public.login_quarantine": 1,
        "public.new_device_logins": 2,  # its device on the first day, the shared one on another
        "public.user_device_first_seen": 2,
    }


def test_erasing_twice_is_harmless_and_the_daily_retention_pass_rewrites_the_files(world):
    pipeline = world.pipeline
    world.erase_here()
    state = (world.others_state(), aggregates(pipeline))
    again = world.erase_here()
    assert (world.others_state(), aggregates(pipeline)) == state
    assert set(again.rows_removed.values()) == {0}  # a user with no rows: suppressed and audited
    assert pipeline.scalar("SELECT count(*) FROM erasure_audit") == 2
    assert pipeline.scalar("SELECT count(*) FROM erasure_suppression") == 1

    with psycopg.connect(pipeline.env[settings.RETENTION_DSN], autocommit=True) as conn:
        assert run_retention(conn, RetentionPolicy()).rewritten
        assert run_retention(conn, RetentionPolicy()).rewritten == []  # nothing left to rewrite

    assert pipeline.scalar("SELECT bool_and(rewritten_at IS NOT NULL) FROM erasure_audit")
    assert relation_files_holding(world) == {}


@pytest.mark.slow  # a killed erase command, a Dagster run, searches
def test_an_erase_killed_before_commit_leaves_all_of_the_user_and_the_job_then_erases_them(world, caplog, capfd):
    pipeline = world.pipeline
    before = data_state(pipeline)
    killed = world.erase(LOGINS_FAILPOINT="erase_before_commit")
    assert killed.returncode == -signal.SIGKILL
    assert data_state(pipeline) == before  # every table: all of the user, no suppression, no audit

    hashed = cli("user-hash", "--user-id", world.user).stdout.strip()
    result = erase_user_job.execute_in_process(
        instance=world.instance,
        resources={
            **pipeline.resources(),
            "erasure_postgres": PostgresResource(dsn=pipeline.env[settings.ERASURE_DSN]),
        },
        run_config=dg.RunConfig(
            ops={"erase_user": EraseConfig(user_hash=hashed, reason="DSR-1234", requested_by="dpo", rewrite=True)}
        ),
    )
    world.run_ids.append(result.run_id)

    assert result.success
    assert pipeline.scalar("SELECT count(*) FROM user_logins WHERE user_id = %s", (world.user,)) == 0
    assert pipeline.scalar("SELECT user_hash FROM erasure_audit") == hashed == user_hash(pipeline.key, world.user)
    assert left_of_the_user(world, run_logs(caplog, capfd, killed)) == {}  # the job run's config, events, logs
    assert relation_files_holding(world) == {}


@pytest.mark.slow  # two Dagster runs and three commands
def test_messages_of_an_erased_user_are_deleted_unread_by_the_drain_and_redrive(world, caplog, capfd):
    pipeline = world.pipeline
    world.erase_here()
    client = pipeline.sqs.client()
    client.send_message(QueueUrl=pipeline.sqs.dead_letter_url(client), MessageBody=world.user_body())
    redriven = cli("redrive")
    assert redriven.returncode == 0 and "suppressed (erased users', deleted unread): 1" in redriven.stdout
    pipeline.seed([world.user_body(), world.body(world.others[0], "10.6.0.1", "d-late")])

    metadata = world.ingest()

    assert metadata["suppressed"] == 1 and metadata["inserted"] == 1
    assert pipeline.left_in_queues() == 0
    assert left_of_the_user(world, run_logs(caplog, capfd, redriven)) == {}


def test_the_erasure_login_erases_but_reads_no_original_and_drops_nothing(pipeline):
    with psycopg.connect(pipeline.env[settings.ERASURE_DSN], autocommit=True) as conn:
        for statement in (
            "SELECT count(*) FROM pii_vault.login_pii",
            "SELECT count(*) FROM pii_vault.reveal_audit",
            "UPDATE erasure_audit SET reason = ''",
            "DELETE FROM erasure_audit",
            "DELETE FROM erasure_suppression",
            "DROP TABLE user_logins_default",
            "INSERT INTO user_logins (user_id) VALUES ('x')",
            "SELECT logins_drop_partition('public.user_logins_default')",
            "SELECT logins_rewrite('public.logins_schema_migrations')",
        ):
            with pytest.raises(psycopg.Error):
                conn.execute(statement)
