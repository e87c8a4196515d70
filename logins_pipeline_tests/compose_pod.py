"""docker-compose.yml's Dagster services run from the image with podman, as Compose would run them: each with
its command, environment (`${...}` interpolated), init and volumes from the compose file, in a pod of its own.

The pod has its own network namespace, so the fixed ports 3000 and 4000 clash with nothing on the host, and
slirp4netns with allow_host_loopback lets it reach the host's loopback, where the test's Postgres and SQS
server listen on free ports. The compose host names map to it (`localstack`, `postgres`) or to the pod itself
(`code`); only their ports differ from the compose file's, and are rewritten in the environment."""

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from logins_pipeline_tests.image import REPO, Engine

COMPOSE_FILE = REPO / "docker-compose.yml"
DAGSTER_SERVICES = ["code", "webserver", "daemon"]
HOST_LOOPBACK = "10.0.2.2"  # the host's 127.0.0.1 as slirp4netns shows it to the pod (allow_host_loopback)
WEBSERVER_PORT = 3000
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:\?|:-)([^}]*))?\}")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}`, `${NAME:?error}` and `$$`."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if name is None:
            return "$"
        if variables.get(name):
            return variables[name]
        if operator == ":?":
            raise ValueError(f"{name}: {argument}")
        return argument or ""

    return _VARIABLE.sub(substitute, value)


@dataclass
class Service:
    name: str
    command: list[str]
    environment: dict[str, str]
    init: bool
    volumes: list[str]


def compose_services(variables: dict[str, str], ports: dict[str, int]) -> dict[str, Service]:
    """The Dagster services of the compose file; `ports` gives the real port of each service the environment
    names (compose host name -> port), rewritten in every `host:port` and in DAGSTER_PG_PORT."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    # "127.0.0.1:5432:5432": the port inside the service's container, the one its compose host name serves.
    compose_ports = {name: services[name]["ports"][0].rsplit(":", 1)[1] for name in ports}
    result = {}
    for name in DAGSTER_SERVICES:
        spec = services[name]
        environment = {key: interpolate(str(value), variables) for key, value in spec["environment"].items()}
        for host, port in ports.items():
            for key, value in environment.items():
                environment[key] = value.replace(f"{host}:{compose_ports[host]}", f"{host}:{port}")
            if environment.get("DAGSTER_PG_HOST") == host:
                environment["DAGSTER_PG_PORT"] = str(port)
        result[name] = Service(name, spec["command"], environment, spec.get("init", False), spec.get("volumes", []))
    return result


class Pod:
    """A podman pod for the services, its webserver port published on a host loopback port."""

    def __init__(self, engine: Engine, name: str, image: str, webserver_port: int):
        self.engine = engine
        self.name = name
        self.image = image
        self.webserver_url = f"http://127.0.0.1:{webserver_port}"
        self.engine.run(
            "pod",
            "create",
            "--name",
            name,
            "--network",
            "slirp4netns:allow_host_loopback=true",
            "--add-host",
            f"localstack:{HOST_LOOPBACK}",
            "--add-host",
            f"postgres:{HOST_LOOPBACK}",
            "--add-host",
            "code:127.0.0.1",
            "--publish",
            f"127.0.0.1:{webserver_port}:{WEBSERVER_PORT}",
        )

    def container(self, service: str) -> str:
        return f"{self.name}-{service}"

    def start(self, service: Service) -> None:
        args = ["run", "--detach", "--pod", self.name, "--name", self.container(service.name)]
        if service.init:
            args.append("--init")
        for volume in service.volumes:
            args += ["--volume", f"{self.name}-{volume}"]  # named volumes, one set per pod
        for key, value in service.environment.items():
            args += ["--env", f"{key}={value}"]
        self.engine.run(*args, self.image, *service.command)

    def exec(self, service: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.engine.run("exec", self.container(service), *command, timeout=timeout, check=False)

    def healthy(self, service: str) -> bool:
        """The image's HEALTHCHECK, run now."""
        return self.engine.run("healthcheck", "run", self.container(service), timeout=60, check=False).returncode == 0

    def wait_healthy(self, service: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy(service):
            state = self.engine.run("inspect", "--format", "{{.State.Status}}", self.container(service)).stdout
            assert state.strip() == "running", f"{service} is {state.strip()}, not running"
            assert time.monotonic() < deadline, f"{service} not healthy after {timeout:.0f} s"
            time.sleep(2)

    def processes(self, service: str) -> list[tuple[str, int, str]]:
        """(host user, host pid, command) of each process in the container. A process that ends while podman
        lists them (a run's step worker, say) is shown with "?" for its host user and pid: it is left out."""
        out = self.engine.run("top", self.container(service), "huser", "hpid", "args").stdout
        rows = [line.split(None, 2) for line in out.splitlines()[1:] if line.strip()]
        return [(user, int(pid), args) for user, pid, args in rows if pid != "?"]

    def logs(self, service: str) -> str:
        result = self.engine.run("logs", self.container(service), check=False)
        return result.stdout + result.stderr

    def stop(self, service: str, grace_seconds: int = 10) -> float:
        """podman stop; returns how long the container took to end."""
        started = time.monotonic()
        self.engine.run("stop", "--time", str(grace_seconds), self.container(service), timeout=grace_seconds + 30)
        return time.monotonic() - started

    def exit_code(self, service: str) -> int:
        return int(self.engine.run("inspect", "--format", "{{.State.ExitCode}}", self.container(service)).stdout)

    def remove(self) -> None:
        self.engine.run("pod", "rm", "--force", self.name, timeout=120, check=False)
        volumes = self.engine.run("volume", "ls", "--quiet", "--filter", f"name={self.name}-", check=False).stdout
        for volume in volumes.split():
            self.engine.run("volume", "rm", "--force", volume, check=False)


def describe(pod: Pod, path: Path | None = None) -> str:
    """Every service's log, for a failure message (and kept in `path` when given)."""
    text = "\n".join(f"--- podman logs {pod.container(name)}\n{pod.logs(name)[-6000:]}" for name in DAGSTER_SERVICES)
    if path:
        path.write_text(text)
    return text
