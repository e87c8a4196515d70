"""Build the production image (the Dockerfile) with docker or podman, print its size and build time: `make image`,
and the image test's fixture.

With docker the Dockerfile's default base is used (a public image, pinned by digest). With podman, by default,
the base is a Python 3.11 image made from Debian's packages with mmdebstrap, made once and cached under a tag
keyed by its recipe, because the machines this project runs on reach no container registry; podman there needs
the settings of docker/podman/containers.conf (CONTAINERS_CONF) and the host's network, CA bundle and pip
configuration during the build (pip inside the build reaches the package index as the host does).

    python -m logins_pipeline_tests.image [--engine docker|podman] [--base auto|default|debian|<image>] [--tag T]
"""

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).parents[1]
TAG = "logins-pipeline:local"  # docker-compose.yml's image
CONTAINERS_CONF = REPO / "docker" / "podman" / "containers.conf"
RDS_CA_STAGED = REPO / "docker" / "rds-ca" / "global-bundle.pem"
# The Debian-made base: Python 3.11 with venv, CA certificates, and useradd (passwd) for the Dockerfile.
DEBIAN_BASE_RECIPE = [
    "mmdebstrap",
    "--quiet",
    "--variant=minbase",
    "--include=python3.11,python3.11-venv,python3,ca-certificates,passwd",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--aptopt=Acquire::Languages none",
    "bookworm",
]
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_BASE_NAME = "localhost/logins-pipeline-base"
# The host's files that pip inside a podman build needs to reach the index as the host does.
HOST_BUILD_FILES = [Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pip.conf")]
# One build at a time on a machine (the suite's two processes, other checkouts): the second reuses the first's
# base and layers instead of making them again beside it.
BUILD_LOCK = Path(tempfile.gettempdir()) / "logins-pipeline-image.lock"
PACKAGES = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}


class ImageError(Exception):
    pass


@dataclass
class Engine:
    """docker or podman, with the environment its commands run in."""

    name: str

    @property
    def env(self) -> dict[str, str]:
        if self.name == "podman":
            return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
        return dict(os.environ)

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.name, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr)[-6000:]
            raise ImageError(f"`{self.name} {' '.join(args)}` failed ({result.returncode}):\n{output}")
        return result

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def image_size(self, ref: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())


def detect_engine() -> Engine:
    """docker when its daemon answers, else podman."""
    if shutil.which("docker") and subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0:
        return Engine("docker")
    return Engine("podman")


def ensure_podman_tools() -> None:
    """podman, runc and mmdebstrap from Debian's packages, installed when missing (as `make browser` does)."""
    missing = [package for tool, package in PACKAGES.items() if not shutil.which(tool)]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = subprocess.run([*sudo, *command], env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImageError(f"`{' '.join(command)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def debian_base(engine: Engine) -> str:
    """The Debian-made base image, made on first use and then reused: its tag is a hash of its recipe."""
    recipe = [*DEBIAN_BASE_RECIPE, DEBIAN_MIRROR]
    ref = f"{DEBIAN_BASE_NAME}:{hashlib.sha256(' '.join(recipe).encode()).hexdigest()[:12]}"
    if engine.image_exists(ref):
        return ref
    with tempfile.TemporaryDirectory(prefix="logins-base-") as folder:
        tarball = Path(folder) / "base.tar"
        command = [*DEBIAN_BASE_RECIPE, str(tarball), DEBIAN_MIRROR]  # mmdebstrap SUITE TARGET MIRROR
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
        if result.returncode != 0:
            raise ImageError(f"mmdebstrap failed:\n{result.stderr[-4000:]}")
        engine.run("import", "--quiet", str(tarball), ref, timeout=300)
    return ref


def resolve_base(engine: Engine, base: str) -> str | None:
    """The BASE_IMAGE build argument; None for the Dockerfile's default."""
    if base == "auto":
        base = "debian" if engine.name == "podman" else "default"
    if base == "default":
        return None
    if base == "debian":
        return debian_base(engine)
    return base


@dataclass
class Build:
    tag: str
    engine: str
    base: str
    seconds: float
    size_bytes: int

    def summary(self) -> str:
        return (
            f"image {self.tag}: {self.size_bytes / 1e6:.0f} MB, built in {self.seconds:.1f} s "
            f"({self.engine}, base {self.base})"
        )


def build(
    engine: Engine,
    tag: str = TAG,
    base: str = "auto",
    rds_ca_bundle: Path | None = None,
    rds_ca_sha256: str = "",
) -> Build:
    """Build the Dockerfile as `tag`. The base image is made first when needed and is not in the build time."""
    with one_build_at_a_time():
        return _build(engine, tag, base, rds_ca_bundle, rds_ca_sha256)


@contextlib.contextmanager
def one_build_at_a_time():
    with BUILD_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build(engine: Engine, tag: str, base: str, rds_ca_bundle: Path | None, rds_ca_sha256: str) -> Build:
    if engine.name == "podman":
        ensure_podman_tools()
    base_image = resolve_base(engine, base)
    args = ["build", "--tag", tag, "--file", str(REPO / "Dockerfile")]
    if base_image:
        args += ["--build-arg", f"BASE_IMAGE={base_image}"]
    if rds_ca_bundle:
        args += ["--build-arg", f"RDS_CA_BUNDLE_SHA256={rds_ca_sha256}"]
    if engine.name == "podman":
        # Docker's image format keeps the HEALTHCHECK (the OCI format has no field for it).
        args += ["--format", "docker", "--layers", "--network", "host"]
        args += [arg for path in HOST_BUILD_FILES if path.exists() for arg in ("--volume", f"{path}:{path}:ro")]
    if rds_ca_bundle:
        shutil.copyfile(rds_ca_bundle, RDS_CA_STAGED)
    started = time.monotonic()
    try:
        engine.run(*args, str(REPO), timeout=1800)
    finally:
        RDS_CA_STAGED.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    return Build(tag, engine.name, base_image or "the Dockerfile's default", seconds, engine.image_size(tag))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["docker", "podman"], help="default: docker if its daemon answers")
    parser.add_argument(
        "--base", default="auto", help="auto (podman: debian; docker: default), default, debian or an image"
    )
    parser.add_argument("--tag", default=TAG)
    parser.add_argument("--rds-ca-bundle", type=Path, help="Amazon's global-bundle.pem, for an ECS image")
    parser.add_argument("--rds-ca-sha256", default="", help="its SHA-256: the build stops on any other")
    options = parser.parse_args()
    engine = Engine(options.engine) if options.engine else detect_engine()
    try:
        result = build(engine, options.tag, options.base, options.rds_ca_bundle, options.rds_ca_sha256)
    except ImageError as error:
        sys.exit(str(error))
    print(result.summary())


if __name__ == "__main__":
    main()
