"""`logins-pipeline`: run the local services, seed the queue, run the pipeline, look at the results."""

import functools
import getpass
import json
import os
import shlex
import sys
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import click
import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from logins_pipeline import settings
from logins_pipeline.analytics import (
    ADDRESS_MIN_USERS,
    DEVICE_MIN_USERS,
    FIRST_SEEN,
    TABLES,
    day_figures_table,
    logged_days,
)
from logins_pipeline.cli.backdate import send_dated
from logins_pipeline.core.generate import expected_figures, generate_activity
from logins_pipeline.core.keys import KeyConfigError
from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.vault import VaultError, VaultKey
from logins_pipeline.drain.ingest import MAX_CHUNK_SIZE, MAX_MIB_IN_HAND
from logins_pipeline.drain.redrive import NoDeadLetterQueue
from logins_pipeline.drain.redrive import redrive as redrive_messages
from logins_pipeline.erasure import Request, erase_user
from logins_pipeline.local.environment import LocalEnvironment
from logins_pipeline.local.services import LocalServiceError
from logins_pipeline.logs import configure_logging
from logins_pipeline.privacy.reveal import NotInVault, reveal
from logins_pipeline.privacy.rotation import rotate_tokens
from logins_pipeline.resources.erased_users import rewrite_pending, suppressed_hashes, user_hash
from logins_pipeline.resources.masking import MaskingResource
from logins_pipeline.resources.postgres import PostgresResource, apply_migrations, scalar
from logins_pipeline.resources.sqs import SQSResource
from logins_pipeline.resources.vault import VaultResource

SEND_THREADS = 4


class SettingMissing(Exception):
    pass


def _require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SettingMissing(f'{name} is not set (for the local services: eval "$(logins-pipeline env)")')
    return value


def _sqs() -> SQSResource:
    return SQSResource(queue_url=_require(settings.QUEUE_URL), region_name=_require(settings.AWS_REGION))


def _postgres(variable: str = settings.POSTGRES_DSN) -> PostgresResource:
    return PostgresResource(dsn=_require(variable), connect_timeout=5)


def _masking_key() -> MaskingKey:
    return MaskingResource(key=_require(settings.MASKING_KEY), environment=_require(settings.ENVIRONMENT)).masking_key()


def _vault_key() -> VaultKey | None:
    key = os.environ.get(settings.VAULT_KEY) or None
    return VaultResource(key=key, environment=_require(settings.ENVIRONMENT)).vault_key()


def _required_vault_key() -> VaultKey:
    key = VaultResource(key=_require(settings.VAULT_KEY), environment=_require(settings.ENVIRONMENT)).vault_key()
    assert key is not None  # a key was given
    return key


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def clear_errors(command):
    """Known failures (service down, bad DSN, wrong queue, bad key) print one line and exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (SettingMissing, LocalServiceError, KeyConfigError, VaultError, NotInVault, NoDeadLetterQueue) as error:
            click.echo(f"error: {error}", err=True)
        except psycopg.Error as error:
            click.echo(f"error: Postgres: {_one_line(error)}", err=True)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            click.echo(f"error: SQS: {code}: {error.response.get('Error', {}).get('Message', '')}", err=True)
        except BotoCoreError as error:
            click.echo(f"error: SQS: {error}", err=True)
        sys.exit(1)

    return wrapper


@click.group()
def main():
    """Drain SQS login events into Postgres user_logins, with PII masked."""
    configure_logging()  # LOGINS_LOG_FORMAT=json: log lines as JSON objects (command output stays text)


@main.command()
@clear_errors
def up():
    """Start the local SQS server and Postgres (idempotent), create the queues, apply migrations, make the
    login roles and the development keys."""
    env = LocalEnvironment().up()
    click.echo(f"SQS      {env[settings.AWS_ENDPOINT_URL_SQS]}  queue {env[settings.QUEUE_URL]}")
    click.echo(f"Postgres {env[settings.POSTGRES_DSN].split('@')[-1]}  (pipeline, analyst and pii_reader logins)")
    click.echo('ready: eval "$(logins-pipeline env)"')


@main.command()
@clear_errors
def down():
    """Stop the local services (their data stays in the state folder; the queue's messages do not)."""
    LocalEnvironment().down()
    click.echo("stopped")


@main.command()
@clear_errors
def env():
    """Print `export` lines for the local services: eval "$(logins-pipeline env)"."""
    for name, value in LocalEnvironment().env().items():
        click.echo(f"export {name}={shlex.quote(value)}")


def _bodies_from_file(path: Path | None) -> list[str]:
    sample = resources.files("logins_pipeline") / "fixtures" / "sample_logins.json"
    text = (path or sample).read_text()
    return [json.dumps(event) for event in json.loads(text)]


@main.command()
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON array of login events (default: the bundled 100-message sample).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    help="Send this many generated logins of a population of users instead (with repeats: shared "
    "devices and addresses, second devices), and print the figures the analytics must find.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 14),
    default=1,
    show_default=True,
    help="Spread the logins over this many days up to today, dated by signed origins as replayed "
    "messages are (needs LOGINS_MASKING_KEY; development only).",
)
@click.option("--seed", "random_seed", type=int, help="Random seed of --count (the same seed, the same logins).")
@clear_errors
def seed(file, count, days, random_seed):
    """Send login messages to the queue (SendMessageBatch, parallel senders)."""
    if file and count:
        raise click.UsageError("use --file or --count, not both")
    sqs = _sqs()
    if count:
        logins = generate_activity(count, days, random_seed)
        bodies, days_ago = [json.dumps(login.event) for login in logins], [login.days_ago for login in logins]
    else:
        bodies = _bodies_from_file(file)
        days_ago = [i % days for i in range(len(bodies))]
    now = datetime.now(UTC)
    with click.progressbar(length=len(bodies), label="seeding", file=sys.stderr) as bar:
        if days > 1:
            failed = send_dated(sqs, _masking_key(), bodies, days_ago, now, SEND_THREADS, progress=bar.update)
        else:
            failed = sqs.send_all(bodies, SEND_THREADS, progress=bar.update)
    click.echo(f"sent {len(bodies) - failed} messages" + (f", {failed} failed" if failed else ""))
    if failed:
        sys.exit(1)
    if count:
        click.echo(
            f"the analytics must find (shared: >= {DEVICE_MIN_USERS} users a device, "
            f">= {ADDRESS_MIN_USERS} an address):"
        )
        for ago, f in sorted(expected_figures(logins, DEVICE_MIN_USERS, ADDRESS_MIN_USERS).items(), reverse=True):
            click.echo(
                f"  {(now - timedelta(days=ago)).date()}: {f.logins} logins, {f.users} users, "
                f"{f.shared_devices} shared devices, {f.shared_addresses} shared addresses, "
                f"{f.new_device_logins} new-device logins"
            )


def _table_counts(postgres: PostgresResource) -> tuple[int, int]:
    with postgres.connect() as conn:
        logins = scalar(conn, "SELECT count(*) FROM public.user_logins")
        quarantined = scalar(conn, "SELECT count(*) FROM public.login_quarantine")
    return logins, quarantined


@main.command()
@click.option("--max-messages", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--chunk-size", type=click.IntRange(1, MAX_CHUNK_SIZE), default=10_000, show_default=True)
@click.option("--receivers", type=click.IntRange(1, 32), default=4, show_default=True)
@click.option(
    "--visibility-timeout",
    type=click.IntRange(min=1),
    help="Seconds a received message stays hidden, renewed while its chunk is in hand [default: 120]",
)
@click.option(
    "--build-processes",
    type=click.IntRange(0, 32),
    help="Worker processes that build chunks of 1,000 messages or more; 0: none [default: the number "
    "of CPUs, at most 4]",
)
@click.option(
    "--max-mib-in-hand",
    type=click.IntRange(min=1),
    default=MAX_MIB_IN_HAND,
    show_default=True,
    help="MiB of message bodies the run holds at once (at least 10 per chunk in hand: build processes + 3)",
)
@click.option(
    "--stall-timeout",
    type=click.IntRange(min=1),
    help="Seconds one wait (Postgres, a build, a receive) may last before the run fails as stalled [default: 120]",
)
@click.option(
    "--shutdown-timeout",
    type=click.IntRange(min=1),
    help="Seconds the drain takes at most to stop after SIGTERM (the process exits within 20) [default: 15]",
)
@clear_errors
def run(
    max_messages,
    chunk_size,
    receivers,
    visibility_timeout,
    build_processes,
    max_mib_in_hand,
    stall_timeout,
    shutdown_timeout,
):
    """Materialize ingest_logins_job once, recorded in the Dagster instance at DAGSTER_HOME."""
    from logins_pipeline.cli.run import run_ingest_job  # imports Dagster's definitions: only when needed

    _require(settings.DAGSTER_HOME)
    _masking_key()
    vault_key = _vault_key()
    sqs = _sqs()
    sqs.queue_depth()  # fail fast, with one line, if the queue is unreachable
    _table_counts(_postgres())
    optional = {"build_processes": build_processes, "stall_timeout": stall_timeout}
    defaulted = {k: v for k, v in {**optional, "shutdown_timeout": shutdown_timeout}.items() if v is not None}
    outcome = run_ingest_job(
        max_messages=max_messages,
        chunk_size=chunk_size,
        receivers=receivers,
        visibility_timeout=visibility_timeout,
        max_mib_in_hand=max_mib_in_hand,
        **defaulted,
    )
    if not outcome.success:
        click.echo(f"error: run {outcome.run_id} failed: {outcome.error}", err=True)
        sys.exit(1)
    m = outcome.metadata
    depth = sqs.queue_depth()
    click.echo(
        f"run {outcome.run_id}: {m['received']} received, {m['inserted']} inserted, "
        f"{m['duplicates_skipped']} duplicates, {m['quarantined']} quarantined, "
        f"{depth.visible + depth.in_flight} left in queue ({m['messages_per_second']:,.0f} msg/s)"
    )
    for reason, n in sorted(outcome.reasons.items()):
        click.echo(f"  quarantined {reason}: {n}")
    click.echo(f"  pii vault: on, key id {vault_key.key_id}" if vault_key else "  pii vault: off (no LOGINS_VAULT_KEY)")
    if m["failed_left_in_queue"]:
        click.echo(f"  failed, left in the queue for the dead-letter queue: {m['failed_left_in_queue']}")


@main.command()
@click.option("--max-messages", type=click.IntRange(min=1), default=100_000, show_default=True)
@clear_errors
def redrive(max_messages):
    """Move dead-lettered messages back to the login queue, once what made them fail is fixed; an erased
    user's are deleted instead (the suppression list, read as LOGINS_POSTGRES_DSN)."""
    key = _masking_key()
    with _postgres().connect() as conn:
        suppressed = suppressed_hashes(conn, key)
    result = redrive_messages(_sqs(), key, max_messages, suppressed)
    click.echo(
        f"moved {result.moved} message(s) from the dead-letter queue back to the login queue"
        + (f"; {result.left} still in the dead-letter queue" if result.left else "")
        + (f"; suppressed (erased users', deleted unread): {result.suppressed}" if result.suppressed else "")
    )


@main.command()
@clear_errors
def status():
    """Queue depth, in flight, dead-letter depth, rows and quarantined rows."""
    sqs = _sqs()
    client = sqs.client()
    depth = sqs.queue_depth(client)
    dlq = sqs.dead_letter_depth(client)
    logins, quarantined = _table_counts(_postgres())
    click.echo(f"queue: {depth.visible} visible, {depth.in_flight} in flight, {depth.delayed} delayed")
    click.echo(f"dead-letter queue: {dlq if dlq is not None else 'none configured'}")
    click.echo(f"user_logins: {logins} rows; login_quarantine: {quarantined} rows")


@main.command("analytics")
@click.option(
    "--day",
    "days",
    multiple=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="A day (YYYY-MM-DD) to refresh; repeatable. Default: every day user_logins has rows for.",
)
@clear_errors
def analytics_command(days):
    """Materialize the daily analytics of those days (recorded at DAGSTER_HOME) and print each day's figures."""
    from logins_pipeline.cli.run import run_analytics_day  # imports Dagster's definitions: only when needed

    _require(settings.DAGSTER_HOME)
    with _postgres().connect() as conn:
        wanted = [d.date() for d in days] or logged_days(conn)
    if not wanted:
        click.echo("user_logins has no rows yet")
    for day in wanted:
        outcome = run_analytics_day(day.isoformat())
        if not outcome.success:
            click.echo(f"error: run {outcome.run_id} for {day} failed: {outcome.error}", err=True)
            sys.exit(1)
    with _postgres().connect() as conn:
        click.echo(day_figures_table(conn, wanted))


@main.command("retention")
@clear_errors
def retention_command():
    """One pass of the daily `retention` schedule, as a logins_retention login (LOGINS_RETENTION_DSN), recorded
    at DAGSTER_HOME: day partitions a week ahead, then the days past LOGINS_RETENTION_DAYS,
    LOGINS_VAULT_RETENTION_DAYS and LOGINS_QUARANTINE_RETENTION_DAYS dropped (unset: kept forever)."""
    from logins_pipeline.cli.run import run_retention_job  # imports Dagster's definitions: only when needed

    _require(settings.DAGSTER_HOME)
    _require(settings.RETENTION_DSN)
    outcome = run_retention_job()
    if not outcome.success:
        click.echo(f"error: run {outcome.run_id} failed: {outcome.error}", err=True)
        sys.exit(1)
    for name, value in outcome.metadata.items():
        click.echo(f"{name:40} {value}")


@main.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@clear_errors
def reset(yes):
    """Development only: purge the queues, empty user_logins, login_quarantine, the analytics and the vault
    (not its audit)."""
    if os.environ.get(settings.ENVIRONMENT) != "development":
        raise SettingMissing(f"reset only runs with {settings.ENVIRONMENT}=development")
    if not yes:
        click.confirm(
            "Purge the queues and delete every row of user_logins, login_quarantine and the vault?", abort=True
        )
    sqs = _sqs()
    sqs.purge()
    with _postgres(settings.POSTGRES_ADMIN_DSN).connect() as conn:
        conn.execute(
            f"TRUNCATE public.user_logins, public.login_quarantine, pii_vault.login_pii, {FIRST_SEEN}, "
            + ", ".join(TABLES)
        )
    click.echo("reset: queues purged, tables emptied")


@main.command()
@clear_errors
def migrate():
    """Apply the schema migrations the database lacks, as the schema's owner (LOGINS_POSTGRES_ADMIN_DSN)."""
    with _postgres(settings.POSTGRES_ADMIN_DSN).connect() as conn:
        applied = apply_migrations(conn)
    click.echo(f"applied migrations {', '.join(map(str, applied))}" if applied else "the schema is up to date")


def _reason(ctx, param, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("say why (it goes into the audit log)")
    return value


@main.command("reveal")
@click.option("--message-id", required=True, help="user_logins.message_id of the row.")
@click.option("--reason", required=True, callback=_reason, help="Why the originals are needed (audited).")
@clear_errors
def reveal_command(message_id, reason):
    """Print a login's original ip and device_id, as a pii_reader login (LOGINS_PII_READER_DSN), with
    LOGINS_VAULT_KEY. The database appends an audit row (who, when, why, which row) first."""
    vault_key = _required_vault_key()
    with _postgres(settings.PII_READER_DSN).connect() as conn:
        revealed = reveal(conn, vault_key, message_id, reason)
    click.echo(f"message_id {message_id}\nip         {revealed.ip}\ndevice_id  {revealed.device_id}")
    click.echo(f"audit row  {revealed.audit_id}")


@main.command("rotate-tokens")
@click.option("--reason", required=True, callback=_reason, help="Why (audited: it decrypts the vault).")
@click.option("--batch-size", type=click.IntRange(min=1), default=1_000, show_default=True)
@clear_errors
def rotate_tokens_command(reason, batch_size):
    """Make the tokens of rows written under older masking keys again under the current LOGINS_MASKING_KEY,
    from the vault (LOGINS_VAULT_KEY), as the schema's owner (LOGINS_POSTGRES_ADMIN_DSN)."""
    masking_key = _masking_key()
    vault_key = _required_vault_key()
    with _postgres(settings.POSTGRES_ADMIN_DSN).connect() as conn:
        summary = rotate_tokens(conn, masking_key, vault_key, reason, batch_size)
    click.echo(
        f"rotated {summary.rotated} rows to masking key {masking_key.key_id}; "
        f"{summary.without_vault} rows under other keys have no vault entry and keep their tokens"
    )


@main.command("user-hash")
@click.option("--user-id", required=True, help="The user (never printed or stored).")
@clear_errors
def user_hash_command(user_id):
    """Print the keyed hash of a user id (LOGINS_MASKING_KEY): how the erase_user job, the erasure audit and
    the suppression list name a user."""
    click.echo(user_hash(_masking_key(), user_id))


@main.command("erase")
@click.option("--user-id", required=True, help="The user to erase everywhere (never printed or stored).")
@click.option("--reason", required=True, callback=_reason, help="Why: the request's reference (audited).")
@click.option("--requested-by", default=getpass.getuser, show_default="your login", help="Who asked (audited).")
@click.option("--rewrite", is_flag=True, help="Rewrite the affected tables' files now, not at the next retention.")
@clear_errors
def erase_command(user_id, reason, requested_by, rewrite):
    """Erase one user's logins, originals, quarantined messages and new-device rows, recompute the days they
    counted in, suppress their messages still in the queues, and audit it, as a logins_erasure login
    (LOGINS_ERASURE_DSN), in one transaction (docs/privacy.md "Erasure")."""
    sqs = _sqs()
    keep_seconds = sqs.message_lifetime_seconds(sqs.client())
    with _postgres(settings.ERASURE_DSN).connect() as conn:
        erasure = erase_user(conn, _masking_key(), user_id, Request(reason, requested_by, keep_seconds))
        rewritten = rewrite_pending(conn) if rewrite else []
    click.echo(f"erased: audit row {erasure.audit_id}, user hash {erasure.user_hash}")
    for table, rows in erasure.rows_removed.items():
        click.echo(f"  {table:32} {rows} row(s) removed")
    click.echo(f"  days recomputed: {', '.join(map(str, erasure.days_recomputed)) or 'none'}")
    click.echo(f"  suppressed in the queues for {keep_seconds} s")
    click.echo(
        f"  files rewritten: {len(rewritten)} relation(s)" if rewrite else "  files: rewritten by the next retention"
    )
