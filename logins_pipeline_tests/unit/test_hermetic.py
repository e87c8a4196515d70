"""The suite passes from a developer's shell: `eval "$(logins-pipeline env)"` ran, the local services are down.
`dg check defs` there used to inherit DAGSTER_HOME (Postgres storage on the stopped server) and retry until
it failed; conftest.py's pytest_configure now clears the caller's AWS_*, LOGINS_* and DAGSTER_* settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from logins_pipeline.local.environment import LocalEnvironment, write_dagster_yaml
from logins_pipeline.local.services import free_port
from logins_pipeline_tests.conftest import REPO

pytestmark = pytest.mark.slow  # a pytest of its own running `dg check defs`


def test_the_suite_ignores_the_local_services_settings_of_the_callers_shell(tmp_path):
    state = tmp_path / "local"
    environment = LocalEnvironment(state)
    down = free_port()  # nothing listens there: the services are down
    # env.json as `logins-pipeline up` writes it, for services that are down now.
    settings = {
        "AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{down}",
        "AWS_REGION": "us-east-1",
        "LOGINS_POSTGRES_DSN": f"postgresql://postgres:unused@127.0.0.1:{down}/logins",
        "DAGSTER_HOME": str(environment.dagster_home),
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": "unused",
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(down),
        "DAGSTER_PG_DB": "dagster",
    }
    state.mkdir(parents=True, exist_ok=True)
    environment.env_file.write_text(json.dumps(settings))
    write_dagster_yaml(environment.dagster_home)  # the packaged instance: Postgres storage
    cli = Path(sys.executable).parent / "logins-pipeline"
    pytest_run = f"{sys.executable} -m pytest -p no:cacheprovider -q logins_pipeline_tests/unit/test_definitions.py"
    script = f'eval "$({cli} env)" && test -n "$DAGSTER_HOME" && exec {pytest_run} -k dg_check_defs'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=REPO,
        env={**os.environ, "LOGINS_LOCAL_DIR": str(state)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
