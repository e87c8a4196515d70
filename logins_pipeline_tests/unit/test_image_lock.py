"""requirements.lock, the image's hashed dependencies, agrees with pyproject.toml: every requirement of the image
(the dependencies, the k8s extra, the build backend) is met by exactly one locked pin, every pin is there
because of one of them, and none of the local or test tools is in it. `make lock` rewrites it."""

import re
import tomllib
from dataclasses import dataclass, field

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from logins_pipeline_tests.image import REPO

LOCK = REPO / "requirements.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# How uv names the inputs in a pin's "# via": the project's requirements; the build backend's, which `make lock`
# passes on stdin, get no "# via" at all.
FROM_PYPROJECT = "logins-pipeline (pyproject.toml)"
FROM_BUILD_SYSTEM = "(stdin)"
NEVER_IN_IMAGE = ["pgserver", "pytest", "hypothesis", "moto", "playwright", "ruff", "mypy", "dagster-dg-cli"]


@dataclass
class Pin:
    version: str
    hashes: int = 0
    via: set[str] = field(default_factory=set)


def parse_lock(text: str) -> dict[str, list[Pin]]:
    """Pins by canonical name (a list, so that a name locked twice shows)."""
    pins: dict[str, list[Pin]] = {}
    for block in re.split(r"(?m)^(?=[A-Za-z0-9])", text):
        if not (match := re.match(r"([A-Za-z0-9._-]+)==([^\s;\\]+)", block)):
            continue  # the header
        via = re.findall(r"(?m)^\s+# via (.+)$|^\s+#   (.+)$", block)
        pin = Pin(match[2], block.count("--hash=sha256:"), {a or b for a, b in via} or {FROM_BUILD_SYSTEM})
        pins.setdefault(canonicalize_name(match[1]), []).append(pin)
    return pins


def image_requirements() -> dict[str, list[Requirement]]:
    project = PYPROJECT["project"]
    return {
        FROM_PYPROJECT: [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["k8s"]],
        FROM_BUILD_SYSTEM: [Requirement(r) for r in PYPROJECT["build-system"]["requires"]],
    }


def unexplained(pins: dict[str, list[Pin]]) -> set[str]:
    """Pins that no requirement of the image leads to, through the pins' "# via"."""
    explained: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, [pin, *_] in pins.items():
            roots = {FROM_PYPROJECT, FROM_BUILD_SYSTEM}
            if name not in explained and pin.via & (roots | explained):
                explained.add(name)
                changed = True
    return set(pins) - explained


@pytest.fixture(scope="module")
def pins() -> dict[str, list[Pin]]:
    return parse_lock(LOCK.read_text())


def test_every_requirement_of_the_image_is_met_by_one_pin(pins):
    for source, requirements in image_requirements().items():
        for requirement in requirements:
            locked = pins.get(canonicalize_name(requirement.name), [])
            assert len(locked) == 1, f"{requirement} ({source}) is locked {len(locked)} times: run `make lock`"
            assert requirement.specifier.contains(locked[0].version, prereleases=True), (
                f"{requirement} ({source}) but the lock has {locked[0].version}: run `make lock`"
            )
            assert source in locked[0].via, f"{requirement} ({source}) is locked for others only: run `make lock`"


def test_every_pin_is_there_for_a_requirement_of_the_image(pins):
    requirements = image_requirements()
    direct = {source: {canonicalize_name(r.name) for r in reqs} for source, reqs in requirements.items()}
    for name, [pin, *_] in pins.items():
        for source, names in direct.items():
            assert source not in pin.via or name in names, f"{name} is locked as a requirement that {source} dropped"
        assert pin.hashes, f"{name} has no hash"
    assert not unexplained(pins), f"locked for no requirement of the image: {sorted(unexplained(pins))}"


def test_the_image_has_the_k8s_launcher_and_no_local_or_test_tools(pins):
    assert "dagster-k8s" in pins
    assert not [name for name in NEVER_IN_IMAGE if name in pins]


def test_the_checks_catch_a_stale_lock(pins):
    """The parser and the checks above, on a lock edited the ways a stale one differs."""
    text = LOCK.read_text()
    dropped_pandas = re.sub(r"(?m)^pandas==.*\n(?:    .*\n)*", "", text)
    assert "pandas" not in parse_lock(dropped_pandas)
    orphan = text + "left-pad==1.0 \\\n    --hash=sha256:00\n    # via nothing-here\n"
    assert unexplained(parse_lock(orphan)) == {"left-pad"}
    assert not unexplained(pins)
