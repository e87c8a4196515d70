"""The embedded local services start, answer on 127.0.0.1 only, restart idempotently and stop."""

import os
import socket
import stat
from concurrent.futures import ThreadPoolExecutor

import boto3
import psutil
import psycopg
import pytest

from logins_pipeline.local.services import LocalPostgres, LocalServiceError, LocalSQS, free_port
from logins_pipeline.resources.postgres import apply_migrations, migrations

pytestmark = pytest.mark.integration


def listening_addresses(port: int) -> set[str]:
    return {
        conn.laddr.ip
        for conn in psutil.net_connections("tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port
    }


def test_postgres_starts_idempotently_on_loopback_and_stops(tmp_path):
    postgres = LocalPostgres(tmp_path, port=free_port())
    try:
        postgres.start()
        pid = (postgres.data_dir / "postmaster.pid").read_text().split()[0]
        postgres.start()
        assert (postgres.data_dir / "postmaster.pid").read_text().split()[0] == pid

        with psycopg.connect(postgres.dsn) as conn:
            row = conn.execute("SELECT current_database(), current_user").fetchone()
        assert row == ("logins", "postgres")
        assert listening_addresses(postgres.port) == {"127.0.0.1"}
        assert stat.S_IMODE(os.stat(postgres.password_file).st_mode) == 0o600
    finally:
        postgres.stop()
    assert not postgres.is_running()
    postgres.stop()


def test_sqs_starts_idempotently_on_loopback_and_stops(tmp_path):
    sqs = LocalSQS(tmp_path, port=free_port())
    try:
        sqs.start()
        pid = sqs.pid_file.read_text()
        sqs.start()
        assert sqs.pid_file.read_text() == pid

        client = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=sqs.endpoint_url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        queue_url = client.create_queue(QueueName="local-services-test")["QueueUrl"]
        client.send_message(QueueUrl=queue_url, MessageBody="hello")
        messages = client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
        assert [m["Body"] for m in messages] == ["hello"]
        assert listening_addresses(sqs.port) == {"127.0.0.1"}
    finally:
        sqs.stop()
    assert not sqs.is_running()
    assert not sqs.pid_file.exists()
    sqs.stop()


@pytest.mark.parametrize("service", [LocalPostgres, LocalSQS])
def test_a_port_taken_by_another_process_is_reported(tmp_path, service):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(LocalServiceError, match=f"port {port} .*already in use"):
            service(tmp_path, port=port).start()


def test_migrations_run_at_once_in_several_databases_of_a_new_cluster(tmp_path):
    """Roles are cluster-wide: databases migrating together must all succeed and share one set of roles."""
    postgres = LocalPostgres(tmp_path, port=free_port())
    names = [f"db{i}" for i in range(4)]
    try:
        postgres.start()
        with psycopg.connect(postgres.admin_dsn("postgres"), autocommit=True) as conn:
            for name in names:
                conn.execute(f"CREATE DATABASE {name}")

        def migrate(name: str) -> list[int]:
            with psycopg.connect(postgres.admin_dsn(name), autocommit=True) as conn:
                return apply_migrations(conn)

        with ThreadPoolExecutor(len(names)) as pool:
            applied = list(pool.map(migrate, names))
        with psycopg.connect(postgres.admin_dsn(names[0])) as conn:
            roles = conn.execute(
                "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
                (["analyst", "logins_writer", "pii_reader"],),
            ).fetchall()
    finally:
        postgres.stop()
    assert applied == [[version for version, _ in migrations()]] * len(names)
    assert roles == [("analyst", False), ("logins_writer", False), ("pii_reader", False)]
