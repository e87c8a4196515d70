"""Static checks of the Compose stack (docker-compose.yml, Dockerfile, docker/*, the instance's dagster.yaml):
no engine, no services.

They pin down what is easy to break silently: the names the code reads, the queue names, the loopback-only
ports, pinned images, and a dagster.yaml that Dagster itself accepts.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from logins_pipeline import settings
from logins_pipeline.defs.logins.assets import POOL, ingest_logins
from logins_pipeline.defs.logins.sensors import MAX_PARALLEL_RUNS
from logins_pipeline.local.services import LOCALSTACK_SERVICES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DAGSTER_YAML = REPO / "logins_pipeline" / "dagster.yaml"
WORKSPACE_YAML = REPO / "docker" / "workspace.docker.yaml"
QUEUE_INIT = REPO / "docker" / "localstack-init" / "create-queues.sh"
PG_INIT_SQL = REPO / "docker" / "postgres-init" / "create-databases.sql"

REQUIRED_SERVICES = {"localstack", "postgres", "code", "webserver", "daemon"}
DAGSTER_SERVICES = ("code", "webserver", "daemon")
CODE_SERVER_PORT = 4000

# Values for the DAGSTER_PG_* variables that dagster.yaml references. The password holds characters
# that must be URL-quoted, to show that dagster-postgres builds a valid URL from them.
PG_ENV = {
    "DAGSTER_PG_USERNAME": "postgres",
    "DAGSTER_PG_PASSWORD": "p@ss/w:rd+=",
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
}


# --------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open() as f:
        data = yaml.safe_load(f)  # resolves the x-* anchors and `<<` merges like Compose does
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    """A service's environment as a dict, from either Compose syntax (mapping or list of K=V)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def healthcheck_text(service: dict) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def option_value(argv: list[str], *names: str) -> str:
    for i, arg in enumerate(argv):
        if arg in names:
            return argv[i + 1]
    raise AssertionError(f"none of {names} in {argv}")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    result = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def shell_assignment(text: str, name: str) -> str:
    match = re.search(rf'^{name}="?([^"\n]*)"?\s*$', text, re.MULTILINE)
    assert match, f"{name}= not found"
    return match.group(1)


def env_references(node) -> set[str]:
    """Every `env: NAME` reference in a Dagster config tree."""
    found: set[str] = set()
    if isinstance(node, dict):
        if set(node) == {"env"}:
            found.add(node["env"])
        for value in node.values():
            found |= env_references(value)
    elif isinstance(node, list):
        for value in node:
            found |= env_references(value)
    return found


# ------------------------------------------------------------------------------------- compose: shape


def test_compose_has_required_services(services: dict) -> None:
    assert set(services) >= REQUIRED_SERVICES


def test_every_image_is_pinned(services: dict) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name}: no image (a built service still needs a tag to share it)"
        image = image.split("@", 1)[0]
        last_part = image.rsplit("/", 1)[-1]
        assert ":" in last_part, f"{name}: image {image!r} has no tag"
        tag = last_part.rsplit(":", 1)[1]
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"


def test_third_party_images_are_the_agreed_versions(services: dict) -> None:
    assert services["localstack"]["image"] == "localstack/localstack:4.13.1"
    assert services["postgres"]["image"] == "postgres:16.6-bookworm"


def test_dagster_services_share_the_built_image(services: dict) -> None:
    assert "build" in services["code"]
    images = {services[name]["image"] for name in DAGSTER_SERVICES}
    assert len(images) == 1, images
    # Only `code` builds; the others reuse its image rather than building (or pulling) their own.
    assert "build" not in services["webserver"] and "build" not in services["daemon"]


def test_published_ports_are_loopback_only(services: dict) -> None:
    published = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # long syntax
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
                published[int(port["published"])] = name
            else:
                text = str(port)
                assert text.startswith("127.0.0.1:"), f"{name}: {text!r} is not bound to 127.0.0.1"
                published[int(text.split(":")[1])] = name
    assert published == {3000: "webserver", 4566: "localstack", 5432: "postgres"}
    # The code server's gRPC port can launch runs and has no authentication: internal only.
    assert "ports" not in services["code"]


def test_dependencies_wait_for_healthy_services(services: dict) -> None:
    expected = {
        "code": {"postgres", "localstack"},
        "webserver": {"postgres", "code"},
        "daemon": {"postgres", "code"},
    }
    for name, deps in expected.items():
        depends_on = services[name]["depends_on"]
        assert isinstance(depends_on, dict), f"{name}: depends_on needs the long form with conditions"
        assert deps <= set(depends_on), f"{name}: {set(depends_on)}"
        for dep, spec in depends_on.items():
            assert spec == {"condition": "service_healthy"} or spec.get("condition") == "service_healthy"
            assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"


def test_healthchecks(services: dict) -> None:
    assert "pg_isready" in healthcheck_text(services["postgres"])
    localstack = healthcheck_text(services["localstack"])
    assert "curl" in localstack and "/_localstack/health" in localstack
    for service in LOCALSTACK_SERVICES:
        assert f'"{service}": *"(available|running)"' in localstack
    code = healthcheck_text(services["code"])
    assert "grpc-health-check" in code and str(CODE_SERVER_PORT) in code


def test_commands(services: dict) -> None:
    code = command_of(services["code"])
    assert code[:3] == ["dagster", "api", "grpc"]
    assert option_value(code, "-h", "--host") == "0.0.0.0"
    assert option_value(code, "-p", "--port") == str(CODE_SERVER_PORT)
    assert option_value(code, "-m", "--module-name") == "logins_pipeline.definitions"

    webserver = command_of(services["webserver"])
    assert webserver[0] == "dagster-webserver"
    assert option_value(webserver, "-p", "--port") == "3000"
    assert option_value(webserver, "-w", "--workspace") == "/opt/dagster/workspace.docker.yaml"

    daemon = command_of(services["daemon"])
    assert daemon[:2] == ["dagster-daemon", "run"]
    assert option_value(daemon, "-w", "--workspace") == "/opt/dagster/workspace.docker.yaml"

    for command in (code, webserver, daemon):
        assert option_value(command, "--log-format") == "json"


# ------------------------------------------------------------------------------- compose: environment


def test_the_code_server_gets_every_setting(services: dict) -> None:
    missing = {*settings.ALL, *settings.OPTIONAL, *settings.DAGSTER_PG} - set(env_of(services["code"]))
    assert not missing, f"code lacks {sorted(missing)}"


@pytest.mark.parametrize("name", ["webserver", "daemon"])
def test_webserver_and_daemon_get_only_the_instance_settings(services: dict, name: str) -> None:
    """They run no pipeline code (sensors and runs execute in the code server), so no pipeline secret."""
    assert set(env_of(services[name])) == {settings.DAGSTER_HOME, *settings.DAGSTER_PG}


def test_setting_values_point_at_the_compose_services(services: dict) -> None:
    env = env_of(services["code"])
    assert env[settings.AWS_ENDPOINT_URL_SQS] == env[settings.AWS_ENDPOINT_URL_SNS] == "http://localstack:4566"
    assert env[settings.ALERT_SNS_TOPIC_ARN] == f"arn:aws:sns:us-east-1:000000000000:{settings.ALERT_TOPIC_NAME}"
    assert env[settings.LOG_FORMAT] == "json"
    assert env[settings.AWS_REGION] == "us-east-1"
    assert env[settings.AWS_ACCESS_KEY_ID] == "test" and env[settings.AWS_SECRET_ACCESS_KEY] == "test"
    assert env[settings.QUEUE_URL] == f"http://localstack:4566/000000000000/{settings.QUEUE_NAME}"
    assert env[settings.ENVIRONMENT] == "production"
    assert env[settings.DAGSTER_HOME] == "/opt/dagster/home"

    raw_dsn = env[settings.POSTGRES_DSN]
    password_ref = re.search(r"\$\{POSTGRES_PASSWORD(:\?[^}]*)?\}", raw_dsn)
    assert password_ref, f"the DSN must take its password from .env: {raw_dsn}"
    dsn = urlsplit(raw_dsn.replace(password_ref.group(0), "0123456789abcdef"))
    assert (dsn.scheme, dsn.username, dsn.password) == ("postgresql", "postgres", "0123456789abcdef")
    assert (dsn.hostname, dsn.port, dsn.path) == ("postgres", 5432, "/logins")


@pytest.mark.parametrize("name", [*DAGSTER_SERVICES, "postgres"])
def test_secrets_are_interpolated_from_dotenv_not_written_inline(services: dict, name: str) -> None:
    env = env_of(services[name])
    secret_values = {
        k: v
        for k, v in env.items()
        if k in {"POSTGRES_PASSWORD", "DAGSTER_PG_PASSWORD", settings.MASKING_KEY, settings.VAULT_KEY}
    }
    assert secret_values, f"{name}: no secret at all?"
    for key, value in secret_values.items():
        required = re.fullmatch(r"\$\{(POSTGRES_PASSWORD|LOGINS_MASKING_KEY):\?[^}]*\}", value)
        optional = value == "${LOGINS_VAULT_KEY:-}"  # no vault unless .env sets a key
        assert required or optional, (key, value)
    # env_file would hand every variable in .env to the container.
    assert "env_file" not in services[name]


# ------------------------------------------------------------------------------------- localstack init


def test_queue_init_script_names_match_settings() -> None:
    text = QUEUE_INIT.read_text()
    assert shell_assignment(text, "QUEUE_NAME") == settings.QUEUE_NAME
    assert shell_assignment(text, "DLQ_NAME") == settings.DEAD_LETTER_QUEUE_NAME
    assert shell_assignment(text, "TOPIC_NAME") == settings.ALERT_TOPIC_NAME
    assert 'awslocal sns create-topic --name "$TOPIC_NAME"' in text


def test_queue_init_script_creates_dlq_first_with_redrive_policy() -> None:
    text = QUEUE_INIT.read_text()
    assert text.startswith("#!"), "LocalStack runs hooks directly: a shebang is required"
    assert "set -euo pipefail" in text, "a failed call must fail the hook (ERROR state, unhealthy)"
    assert shell_assignment(text, "MAX_RECEIVE_COUNT") == "5"
    assert shell_assignment(text, "VISIBILITY_TIMEOUT") == "60"
    dlq_at = text.index('--queue-name "$DLQ_NAME"')
    queue_at = text.index('--queue-name "$QUEUE_NAME"')
    assert dlq_at < queue_at, "the DLQ must exist before the queue whose RedrivePolicy names it"
    assert "RedrivePolicy" in text and "deadLetterTargetArn" in text and "maxReceiveCount" in text
    assert "awslocal sqs create-queue" in text


def test_queue_init_script_is_executable_and_mounted(services: dict) -> None:
    assert QUEUE_INIT.stat().st_mode & stat.S_IXUSR, "LocalStack skips init scripts that are not executable"
    mounts = [str(v) for v in services["localstack"]["volumes"]]
    assert any(
        m.split(":")[0] == "./docker/localstack-init/create-queues.sh"
        and m.split(":")[1].startswith("/etc/localstack/init/ready.d/")
        for m in mounts
    ), mounts
    # The same services as the local LocalStack, SNS for the alerts.
    assert env_of(services["localstack"])["SERVICES"].split(",") == list(LOCALSTACK_SERVICES)


# --------------------------------------------------------------------------------------- postgres init


def test_postgres_init_creates_both_databases(services: dict) -> None:
    sql = PG_INIT_SQL.read_text().lower()
    created = set(re.findall(r"create\s+database\s+\"?(\w+)\"?", sql))
    assert created == {"logins", "dagster"}
    mounts = [str(v) for v in services["postgres"]["volumes"]]
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in mounts
    for name in DAGSTER_SERVICES:
        assert env_of(services[name])["DAGSTER_PG_DB"] == "dagster"


# ------------------------------------------------------------------------------------------- workspace


def test_workspace_points_at_the_code_server() -> None:
    workspace = yaml.safe_load(WORKSPACE_YAML.read_text())
    (entry,) = workspace["load_from"]
    grpc = entry["grpc_server"]
    assert grpc == {"host": "code", "port": CODE_SERVER_PORT, "location_name": "logins_pipeline"}


def test_workspace_file_is_accepted_by_dagster() -> None:
    from dagster._core.workspace.config_schema import ensure_workspace_config

    ensure_workspace_config(yaml.safe_load(WORKSPACE_YAML.read_text()), str(WORKSPACE_YAML))


# ----------------------------------------------------------------------------------------- dagster.yaml


def _instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: dict | None = None) -> Path:
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    if config is None:
        shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_dagster_yaml_passes_dagster_instance_validation(tmp_path, monkeypatch) -> None:
    from dagster._core.instance.config import dagster_instance_config

    home = _instance_dir(tmp_path, monkeypatch)
    config, custom_class = dagster_instance_config(str(home))
    assert custom_class is None
    assert set(config["storage"]) == {"postgres"}


def test_dagster_yaml_postgres_storage_resolves_from_env(tmp_path, monkeypatch) -> None:
    from dagster._config import process_config
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config
    from sqlalchemy.engine import make_url

    _instance_dir(tmp_path, monkeypatch)
    storage = yaml.safe_load(DAGSTER_YAML.read_text())["storage"]["postgres"]
    result = process_config(DagsterPostgresStorage.config_type(), storage)
    assert result.success and result.value is not None, result.errors
    # Parsed the way dagster-postgres's engine parses it. dagster-postgres quotes the password, though
    # not its '/' (urllib's default), which SQLAlchemy's parser tolerates: any password survives here.
    url = make_url(pg_url_from_config(result.value))
    # psycopg2 named: SQLAlchemy >= 2.1 would pick psycopg 3 for `postgresql`, which dagster-postgres
    # does not work with (its NOTIFY takes a bound parameter).
    assert (url.drivername, url.username) == ("postgresql+psycopg2", "postgres")
    assert url.password == PG_ENV["DAGSTER_PG_PASSWORD"]
    assert (url.host, url.port, url.database) == ("postgres", 5432, "dagster")


def test_dagster_yaml_env_references_are_provided_by_compose(services: dict) -> None:
    refs = env_references(yaml.safe_load(DAGSTER_YAML.read_text()))
    assert refs >= set(PG_ENV)
    for name in DAGSTER_SERVICES:
        missing = refs - set(env_of(services[name]))
        assert not missing, f"{name} lacks {sorted(missing)}, which dagster.yaml reads"


def test_dagster_yaml_builds_an_instance_with_the_run_queue(tmp_path, monkeypatch) -> None:
    """Everything but the storage, for real: Postgres storage would connect at construction, so it is
    swapped for SQLite here (the Postgres part is checked above)."""
    from dagster import DagsterInstance, DefaultRunLauncher, QueuedRunCoordinator
    from dagster._core.instance.config import PoolGranularity

    config = yaml.safe_load(DAGSTER_YAML.read_text())
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    home = _instance_dir(tmp_path, monkeypatch, config)

    instance = DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert isinstance(instance.run_launcher, DefaultRunLauncher)
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config is not None
        assert concurrency.run_queue_config.should_block_op_concurrency_limited_runs
        assert concurrency.pool_config.default_pool_limit == 4
        assert concurrency.pool_config.pool_granularity == PoolGranularity.RUN
        assert instance.run_monitoring_enabled
    finally:
        instance.dispose()


def test_the_pool_limit_covers_the_ingest_step_and_matches_the_sensor() -> None:
    """Every run that drains the queue (sensor, UI, CLI) runs the ingest_logins step, which is in the pool;
    the sensor never asks for more parallel runs than the pool lets through."""
    assert ingest_logins.op.pool == POOL
    pools = yaml.safe_load(DAGSTER_YAML.read_text())["concurrency"]["pools"]
    assert pools["default_limit"] == MAX_PARALLEL_RUNS


# ------------------------------------------------------------------------------------------- Dockerfile


def test_dockerfile_base_image_is_pinned_by_digest() -> None:
    """FROM ${BASE_IMAGE}, whose default is the public Python image pinned by tag and digest."""
    instructions = dockerfile_instructions()
    assert [args for instr, args in instructions if instr == "FROM"] == ["${BASE_IMAGE}"]
    [default] = [args.split("=", 1)[1] for instr, args in instructions if instr == "ARG" and "BASE_IMAGE=" in args]
    assert re.fullmatch(r"docker\.io/library/python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", default), default


def test_dockerfile_runs_as_non_root() -> None:
    users = [args for instr, args in dockerfile_instructions() if instr == "USER"]
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_layout_matches_compose(services: dict) -> None:
    instructions = dockerfile_instructions()
    args_of = lambda name: [args for instr, args in instructions if instr == name]  # noqa: E731
    assert args_of("WORKDIR")[-1] == "/opt/dagster/app"
    assert "4000" in " ".join(args_of("EXPOSE")).split()
    assert any("DAGSTER_HOME=/opt/dagster/home" in args for args in args_of("ENV"))
    copies = args_of("COPY")
    assert "logins_pipeline/dagster.yaml /opt/dagster/home/dagster.yaml" in copies
    assert "docker/workspace.docker.yaml /opt/dagster/workspace.docker.yaml" in copies
    assert any(re.search(r"\bpip install\b.*(/tmp/src|\s\.)(\s|$)", args) for args in args_of("RUN"))
    for name in DAGSTER_SERVICES:
        assert env_of(services[name])["DAGSTER_HOME"] == "/opt/dagster/home"


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    entries = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for required in (".venv", ".local", ".git", ".env"):
        assert required in entries, required
    assert "__pycache__" in entries or "**/__pycache__" in entries


# ------------------------------------------------------------------------------------------- secrets


def test_env_example_lists_the_secrets_without_values() -> None:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    assert set(values) == {"POSTGRES_PASSWORD", "LOGINS_MASKING_KEY", "LOGINS_VAULT_KEY"}
    assert all(v == "" for v in values.values()), "no real or default secrets in a committed file"
    text = (REPO / ".env.example").read_text()
    assert "openssl rand -base64 32" in text
    # The password ends up unescaped inside a postgresql:// URI: base64's '/' would break it.
    assert "openssl rand -hex" in text


def test_dotenv_is_git_ignored() -> None:
    lines = {line.strip() for line in (REPO / ".gitignore").read_text().splitlines()}
    assert ".env" in lines
    if shutil.which("git") and (REPO / ".git").exists():
        assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False).returncode == 0
        assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=REPO, check=False).returncode == 1
