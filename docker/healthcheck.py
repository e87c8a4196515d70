"""The image's HEALTHCHECK: one image runs three services, so this checks the one PID 1 runs (or starts, under
an init such as `init: true`'s tini): the code server answers a gRPC health check, the webserver serves
/server_info, the daemon has a recent heartbeat in the instance storage. Exit 0 when healthy."""

import subprocess
import sys
import urllib.request
from pathlib import Path

TIMEOUT = 15


def service_command() -> list[str]:
    """PID 1's command line, past an init's `--`."""
    args = Path("/proc/1/cmdline").read_bytes().decode().split("\0")[:-1]
    return args[args.index("--") + 1 :] if "--" in args else args


def option(args: list[str], name: str, default: str) -> str:
    return args[args.index(name) + 1] if name in args else default


def check(args: list[str]) -> int:
    programs = {Path(arg).name for arg in args}
    if "dagster-webserver" in programs:
        port = option(args, "-p", "3000")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=TIMEOUT) as response:
            return 0 if response.status == 200 else 1
    if "dagster-daemon" in programs:
        command = ["dagster-daemon", "liveness-check"]
    elif "code-server" in args or "grpc" in args:
        command = ["dagster", "api", "grpc-health-check", "-p", option(args, "-p", "4000")]
    else:
        print(f"no Dagster service in PID 1's command: {args}", file=sys.stderr)
        return 1
    return subprocess.run(command, timeout=TIMEOUT, check=False).returncode


if __name__ == "__main__":
    sys.exit(check(service_command()))
