"""The fault scenarios of `make chaos` (chaos.py) but its chaos-only rows, against the session's services: every
one must leave nothing lost, nothing duplicated and nothing in the queues. The table is printed at the end of
the run."""

import pytest

from logins_pipeline_tests.aws_like_sqs import AWS_LIKE
from logins_pipeline_tests.chaos import Count, Lab, scenarios

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRIALS = 3  # per crash point, one in each of chunks 1-3 (`make chaos` runs 10): a minute of `make test`
AWS_LIKE_TRIALS = 2  # per crash point through AWS-like SQS, at once: chunks 1 and 2 (`make chaos`: 5, chunks 1-3)
SIGTERM_CHUNK = 2_000  # the bounded SIGTERM's chunks (`make chaos`: 10,000): 12,000 messages to seed, not 60,000
REVOKED = (4, 1.0)  # INSERT revoked for 4 sensor intervals of 1 s (`make chaos`: 10 of 2 s), enough to back off
# Not the rows marked chaos_only: the AWS-like repeats of the slow faults (worker kill, hung worker, blackhole,
# parallel runs, INSERT revoked), about 3 minutes of `make test` that their LocalStack rows cover here.
SCENARIOS = {
    name: scenario
    for name, scenario in scenarios(TRIALS, AWS_LIKE_TRIALS, SIGTERM_CHUNK, REVOKED).items()
    if not scenario.chaos_only
}


@pytest.fixture(scope="session")
def lab(local_services, aws_like_proxy, tmp_path_factory):
    environment, env = local_services
    aws_like_proxy.configure(**AWS_LIKE)
    lab = Lab(environment, env, tmp_path_factory.mktemp("chaos"), aws_like_proxy)
    yield lab
    lab.close()


@pytest.mark.parametrize("name", SCENARIOS)
def test_fault_leaves_nothing_lost_doubled_or_behind(lab, record_property, name):
    lab.aws_like.configure(**AWS_LIKE)  # whatever the AWS-like drain tests in this process left it at
    scenario = SCENARIOS[name]
    left = scenario.run(lab)
    row = (list(SCENARIOS).index(name), name, scenario.trials, left.lost, left.duplicated, left.left)
    record_property("fault", row)  # the table's row, printed at the end in the order of SCENARIOS
    assert left == Count()
