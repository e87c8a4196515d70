"""A run of ingest_logins_job created as the webserver or daemon would, from the code location loaded with
a container image, in an instance whose run launcher is the one under test."""

import contextlib
from pathlib import Path

import dagster as dg
from dagster._core.test_utils import in_process_test_workspace
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from logins_pipeline_tests.stack import REPO

# Resolving the run's config needs what the code server's environment holds; the launchers must pass the
# secrets on by reference only, so these values must never reach what they send.
CODE_SERVER_SECRETS = {
    "LOGINS_POSTGRES_DSN": "postgresql://writer:s3cr3t-dsn@db/logins",
    "LOGINS_MASKING_KEY": "s3cr3t-masking-key",
}
CODE_SERVER_SETTINGS = {
    "AWS_REGION": "eu-west-1",
    "LOGINS_SQS_QUEUE_URL": "https://sqs.example/q",
    "LOGINS_ENVIRONMENT": "production",
}


@contextlib.contextmanager
def launchable_run(launcher_config: dict, image: str, folder: Path):
    """(instance, run, workspace): the run is created, not launched."""
    origin = LoadableTargetOrigin(module_name="logins_pipeline.definitions", working_directory=str(REPO))
    with (
        dg.instance_for_test(overrides={"run_launcher": launcher_config}, temp_dir=str(folder)) as instance,
        in_process_test_workspace(instance, origin, container_image=image) as workspace,
    ):
        [location_name] = workspace.code_location_names
        [repository] = workspace.get_code_location(location_name).get_repositories().values()
        remote_job = repository.get_full_job("ingest_logins_job")
        from logins_pipeline.definitions import defs  # loaded by the workspace above

        run = instance.create_run_for_job(
            job_def=defs.resolve_job_def("ingest_logins_job"),
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
        )
        yield instance, run, workspace
