"""fauxqs (npm), an SQS-compatible server in Node: the stream benchmark's server for rates LocalStack cannot
carry here (it receives and deletes about 1,300 messages a second on this machine, with the producer's sends
on top). Faster, less faithful: it reports a DeleteMessageBatch with a stale receipt handle as successful,
so the fault trials stay on LocalStack and the AWS-like harness."""

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from logins_pipeline.local.services import free_port

VERSION = "1.9.2"  # the last release that runs on the system's node 20
HERE = Path(__file__).parent
INSTALL_DIR = HERE.parent / ".local" / f"fauxqs-{VERSION}"


def install() -> Path:
    """npm-installs fauxqs into .local/ once; returns its folder."""
    if not (INSTALL_DIR / "node_modules" / "fauxqs").is_dir():
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(INSTALL_DIR),
                f"fauxqs@{VERSION}",
            ],
            check=True,
        )
    return INSTALL_DIR


@contextlib.contextmanager
def fauxqs_server(region: str) -> Iterator[str]:
    """A fauxqs on a free loopback port for the duration; yields its endpoint URL."""
    folder, port = install(), free_port()
    script = folder / "fauxqs_server.mjs"
    script.write_text((HERE / "fauxqs_server.mjs").read_text())  # node resolves "fauxqs" from the script's folder
    process = subprocess.Popen(["node", str(script), str(port), region], stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "Ready.":
            raise RuntimeError(f"fauxqs did not start (exit code {process.poll()})")
        yield f"http://127.0.0.1:{port}"  # listening once it said Ready.
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
