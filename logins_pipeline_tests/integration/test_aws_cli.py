"""The README's AWS CLI line, run with the real AWS CLI v1 (awscli, pinned in the test extras) after
`eval "$(logins-pipeline env)"`, against the session's local server."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from logins_pipeline import settings
from logins_pipeline_tests.conftest import REPO

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
README_LINE = re.compile(r"^\s+(aws .*sqs get-queue-attributes .*)$", re.MULTILINE)


def run_in_shell(script: str, state_dir: Path) -> subprocess.CompletedProcess:
    """`script` in bash with only PATH, HOME and the state folder set: no AWS_* from this process."""
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LOGINS_LOCAL_DIR": str(state_dir)}
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )


def test_the_readme_aws_cli_line_works_after_eval_env(local_services):
    environment, _ = local_services
    [line] = README_LINE.findall((REPO / "README.md").read_text())
    result = run_in_shell(f'eval "$(logins-pipeline env)" && {line}', environment.state_dir)
    assert result.returncode == 0, result.stderr
    attributes = json.loads(result.stdout)["Attributes"]
    assert attributes["ApproximateNumberOfMessages"].isdigit()
    dead_letter_arn = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"]
    assert dead_letter_arn.endswith(f":{settings.DEAD_LETTER_QUEUE_NAME}")


def test_without_aws_default_region_the_cli_has_no_region(local_services):
    """Why `env` exports AWS_DEFAULT_REGION: the CLI does not read AWS_REGION."""
    environment, _ = local_services
    [line] = README_LINE.findall((REPO / "README.md").read_text())
    result = run_in_shell(f'eval "$(logins-pipeline env)" && unset AWS_DEFAULT_REGION && {line}', environment.state_dir)
    assert result.returncode != 0
    assert "You must specify a region" in result.stderr
