"""Embedded local development services, without Docker: Postgres 16 and LocalStack SQS.

Both run as detached host processes that outlive the Python process which started them; their
state (data, logs, pid files) lives under a state directory, and both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql


def _pgserver_bin() -> Path:
    """Located without importing pgserver: its import has side effects (runtime-dir lock file, warnings)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise ImportError("pgserver is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


PG_BIN = _pgserver_bin()
PG_SUPERUSER = "postgres"
PG_DATABASE = "logins"
PG_START_TIMEOUT_S = 30
# sun_path is 108 bytes including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 107
ROLE_LOCK = 7_452_020  # pg_advisory_xact_lock key for creating login roles

# moto-ext, aws-sam-translator and jsonpath-ng: LocalStack's CloudFormation and Secrets Manager need them (the base
# runtime alone cannot load those services).
LOCALSTACK_REQUIREMENTS = (
    "localstack-core[base-runtime]==2026.3.0",
    "cbor2<6",
    "pyopenssl<26.2",
    "moto-ext==5.1.54",
    "aws-sam-translator==1.115.0",
    "jsonpath-ng==1.7.0",
)
LOCALSTACK_SERVICES = ("sqs", "sns")  # SNS for the run-failure alerts; it adds nothing measurable to the start
# The tests also create deploy/cloudformation/logins-pipeline.yaml through LocalStack's CloudFormation (its KMS
# keys and CloudWatch alarms too). These load eagerly and slow the start, so only the test session asks for them.
LOCALSTACK_DEPLOY_SERVICES = ("cloudformation", "iam", "secretsmanager", "kms", "cloudwatch")
LOCALSTACK_START_TIMEOUT_S = 60
LOCALSTACK_STOP_GRACE_S = 3
LOG_TAIL_LINES = 20


class LocalServiceError(Exception):
    """A local service could not be installed, started or reached."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_port_free(port: int, service: str, port_env: str) -> None:
    """Raise if something else listens on 127.0.0.1:<port>; ``port_env`` is how the CLI overrides the port.

    SO_REUSEADDR makes the probe ignore TIME_WAIT leftovers of a previous run, like the servers do.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise LocalServiceError(
                f"Cannot start {service}: port {port} on 127.0.0.1 is already in use by another process. "
                f"Stop that process or choose another port: set {port_env} (or pass port=...)."
            ) from None


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600), in a folder only its owner can enter."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)
        f.write(text)


def private_secret(path: Path, make) -> str:
    """The secret kept in `path` (mode 0600), made by `make()` the first time."""
    if not path.exists():
        write_private(path, make())
    return path.read_text().strip()


def _random_password() -> str:
    return secrets.token_urlsafe(32)


def _log_tail(log: Path) -> str:
    if not log.exists():
        return "(no log written)"
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    return "\n".join(lines)


def _run(cmd: list[str], what: str) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        raise LocalServiceError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()}")


def _as_unprivileged() -> list[str]:
    """Command prefix that lets the Postgres binaries run when we are root (they refuse euid 0).

    As root, each binary runs in a new user namespace where our uid 0 is mapped to the uid of
    ``nobody``: Postgres sees a non-root euid, while the kernel still checks file access as the
    real root. So nothing is chowned, no system user is created and no directory permission is
    widened; state directories under 0700 parents (``/root``, pytest's ``/tmp/pytest-of-root``)
    just work, and the files stay root-owned, so cleanup needs no privileges. The alternative,
    ``runuser``/``setpriv`` to another user (pgserver does it with a ``useradd``-ed user), needs
    the state dir chowned and every parent directory traversable by that user, so pgserver
    chmods all parents up to ``/``. Needs util-linux >= 2.38 ``unshare`` and user namespaces
    (true on the dev and CI machines; a Docker container under the default seccomp profile
    refuses them).
    """
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") is None:
        raise LocalServiceError("As root, Postgres is started through `unshare` (util-linux): not found.")
    nobody = pwd.getpwnam("nobody")
    return ["unshare", "--user", f"--map-user={nobody.pw_uid}", f"--map-group={nobody.pw_gid}"]


class LocalPostgres:
    """Postgres 16 from the binaries bundled in the ``pgserver`` wheel, on 127.0.0.1:<port>.

    The binaries are run directly: pgserver's Python API binds unix sockets only.
    """

    def __init__(self, state_dir: Path, port: int = 54329) -> None:
        self.port = port
        self.root = Path(state_dir).resolve() / "postgres"
        self.data_dir = self.root / "data"
        self.log_file = self.root / "postgres.log"
        self.password_file = self.root / "password"

    @property
    def dsn(self) -> str:
        return self.admin_dsn(PG_DATABASE)

    def admin_dsn(self, dbname: str) -> str:
        """Superuser DSN for database ``dbname``."""
        return self._dsn(PG_SUPERUSER, self.password, dbname)

    def login_dsn(self, role: str, dbname: str) -> str:
        """DSN of a login role made by ensure_login_role, for database ``dbname``."""
        return self._dsn(role, self._role_password_file(role).read_text().strip(), dbname)

    def ensure_login_role(self, role: str, group: str) -> None:
        """A LOGIN role in ``group`` (cluster-wide), its random password kept 0600 in the state folder."""
        password = private_secret(self._role_password_file(role), _random_password)
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn, conn.transaction():
            # Roles are cluster-wide: concurrent callers (parallel test slices) would collide ("tuple
            # concurrently updated"), so they take turns.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (ROLE_LOCK,))
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            statement = "ALTER ROLE {} LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
            conn.execute(sql.SQL(statement).format(sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(role)))

    def _role_password_file(self, role: str) -> Path:
        return self.root / "roles" / f"{role}.password"

    def _dsn(self, user: str, password: str, dbname: str) -> str:
        return f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{self.port}/{dbname}"

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        status = subprocess.run(
            self._pg_ctl("status"), capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
        return status.returncode == 0

    def start(self) -> None:
        """Initialise on first use, start, and wait until it accepts connections; no-op if running."""
        if self.is_running():
            return
        _ensure_port_free(self.port, "Postgres", "LOGINS_LOCAL_POSTGRES_PORT")
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        options = ["-c", "listen_addresses=127.0.0.1", "-p", str(self.port), "-k", str(self._socket_dir())]
        start = self._pg_ctl(
            "start",
            "-w",
            "-t",
            str(PG_START_TIMEOUT_S),
            "-l",
            str(self.log_file),
            "-o",
            subprocess.list2cmdline(options),
        )
        result = subprocess.run(start, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        if result.returncode != 0:
            raise LocalServiceError(
                f"Postgres did not start on 127.0.0.1:{self.port}: "
                f"{result.stderr.strip()}\nLast lines of {self.log_file}:\n{_log_tail(self.log_file)}"
            )
        self.ensure_database(PG_DATABASE)

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def stop(self) -> None:
        if self.is_running():
            _run(self._pg_ctl("stop", "-m", "fast", "-w"), "pg_ctl stop")

    def _pg_ctl(self, *args: str) -> list[str]:
        return [*_as_unprivileged(), str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), *args]

    def _initdb(self) -> None:
        write_private(self.password_file, _random_password())
        _run(
            [
                *_as_unprivileged(),
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                PG_SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={self.password_file}",
                "--encoding=UTF8",
                "--no-locale",
            ],
            "initdb",
        )

    def _socket_dir(self) -> Path:
        """Unix socket directory: inside the state dir unless that path is too long for a socket."""
        directory = self.root / "run"
        if len(str(directory / f".s.PGSQL.{self.port}")) > MAX_UNIX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
            directory = Path("/tmp") / f"logins-pg-{digest}"
        directory.mkdir(mode=0o700, exist_ok=True)
        return directory

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self.admin_dsn("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}"')


def _find_python313() -> str:
    """Python 3.13 from $LOGINS_PYTHON313, else python3.13 on PATH, else pyenv's versions.

    Each candidate is run: a pyenv shim exists on PATH even when it fails for lack of a version.
    """
    candidates = [os.environ.get("LOGINS_PYTHON313"), shutil.which("python3.13")]
    pyenv_versions = os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")
    candidates += sorted(glob.glob(pyenv_versions), reverse=True)
    for candidate in filter(None, candidates):
        try:
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        if version.returncode == 0 and version.stdout.startswith("Python 3.13"):
            return candidate
    raise LocalServiceError(
        "LocalStack needs Python 3.13 but none was found: set LOGINS_PYTHON313 to a python3.13 "
        "executable, or put python3.13 on PATH."
    )


def _pid_is_localstack(pid: int) -> bool:
    """True if ``pid`` is a live LocalStack, not a zombie nor an unrelated process that reused the pid."""
    try:
        return b"localstack.runtime.main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may exit between the check and the signal
        os.killpg(pid, sig)


class LocalSQS:
    """LocalStack (SQS and SNS) running on the host from its own Python 3.13 venv, on 127.0.0.1:<port>."""

    def __init__(
        self,
        state_dir: Path,
        port: int = 4566,
        venv_dir: Path | None = None,
        services: tuple[str, ...] = LOCALSTACK_SERVICES,
    ) -> None:
        self.port = port
        self.services = services
        self.root = Path(state_dir).resolve() / "localstack"
        self.pid_file = self.root / "localstack.pid"
        self.log_file = self.root / "localstack.log"
        default_venv = os.environ.get("LOGINS_LOCALSTACK_VENV") or Path.cwd() / ".local" / "localstack-venv"
        self.venv_dir = Path(venv_dir or default_venv).resolve()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ensure_installed(self) -> None:
        """Create the venv and install LocalStack into it, unless the same requirements already are. Under a
        file lock: processes starting at once (the test suite's two, two `up`s) would install into it together."""
        marker = self.venv_dir / "logins-requirements.txt"
        wanted = "\n".join(LOCALSTACK_REQUIREMENTS)
        self.venv_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.venv_dir.with_name(f"{self.venv_dir.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            if marker.exists() and marker.read_text() == wanted:
                return
            print(
                f"Installing LocalStack into {self.venv_dir} (one-time, takes a minute or two)...",
                file=sys.stderr,
                flush=True,
            )
            if not (self.venv_dir / "bin" / "python").exists():
                _run([_find_python313(), "-m", "venv", str(self.venv_dir)], "Creating the LocalStack venv")
            pip = [str(self.venv_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
            _run([*pip, *LOCALSTACK_REQUIREMENTS], "Installing LocalStack")
            marker.write_text(wanted)

    def is_running(self) -> bool:
        return self._pid() is not None

    def start(self) -> None:
        """Start LocalStack detached and wait until SQS and SNS are ready; if already running, only wait."""
        if self._pid() is None:
            _ensure_port_free(self.port, "LocalStack SQS", "LOGINS_LOCAL_SQS_PORT")
            self.ensure_installed()
            self._spawn()
        self._wait_ready()

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a grace period: hypercorn may ignore SIGTERM for ~20s."""
        pid = self._pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            deadline = time.monotonic() + LOCALSTACK_STOP_GRACE_S
            while _pid_is_localstack(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_is_localstack(pid):
                _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if _pid_is_localstack(pid) else None

    def _spawn(self) -> None:
        filesystem_root = self.root / "fs"
        filesystem_root.mkdir(parents=True, exist_ok=True)
        listen = f"127.0.0.1:{self.port}"
        # Exactly this environment, nothing inherited (AWS_*, proxies, LS_LOG: trace logs hold bodies).
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(self.root)),
            "SERVICES": ",".join(self.services),
            "EAGER_SERVICE_LOADING": "1",
            "GATEWAY_SERVER": "hypercorn",
            "GATEWAY_LISTEN": listen,
            "LOCALSTACK_HOST": listen,
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "PERSISTENCE": "0",
            "SQS_ENDPOINT_STRATEGY": "path",
            "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(filesystem_root),
        }
        with open(self.log_file, "ab") as log:
            process = subprocess.Popen(
                [str(self.venv_dir / "bin" / "python"), "-m", "localstack.runtime.main"],
                env=env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(process.pid))
        # Popen can return while the kernel is still inside execve, before /proc/<pid>/cmdline is filled in.
        while not _pid_is_localstack(process.pid) and process.poll() is None:
            time.sleep(0.01)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + LOCALSTACK_START_TIMEOUT_S
        while time.monotonic() < deadline and self.is_running():
            if self._sqs_ready():
                return
            time.sleep(0.25)
        problem = "exited" if not self.is_running() else f"was not ready within {LOCALSTACK_START_TIMEOUT_S}s"
        self.stop()
        raise LocalServiceError(
            f"LocalStack on {self.endpoint_url} {problem}.\nLast lines of {self.log_file}:\n{_log_tail(self.log_file)}"
        )

    def _sqs_ready(self) -> bool:
        # No proxies: the health check targets loopback whatever http_proxy says.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.endpoint_url}/_localstack/health", timeout=2) as response:
                services = json.load(response).get("services", {})
        except (OSError, ValueError):
            return False
        return all(services.get(name) in ("running", "available") for name in self.services)
