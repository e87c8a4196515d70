"""user_logins' freshness policy, evaluated the way the daemon's FreshnessDaemon does, on a real instance:
unknown before the first materialization, fresh after one, WARN after 30 minutes, FAIL after an hour."""

import asyncio
from datetime import timedelta

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.definitions.freshness_evaluator import TimeWindowFreshnessPolicyEvaluator
from dagster._core.loader import LoadingContextForTest
from dagster._core.test_utils import freeze_time
from dagster._time import get_current_datetime

from logins_pipeline.definitions import defs
from logins_pipeline.defs.logins.assets import user_logins


def freshness(instance: dg.DagsterInstance) -> FreshnessState:
    node = defs.resolve_asset_graph().get(user_logins.key)
    return asyncio.run(TimeWindowFreshnessPolicyEvaluator().evaluate_freshness(LoadingContextForTest(instance), node))


@pytest.mark.parametrize(
    ("minutes_later", "state"),
    [(1, FreshnessState.PASS), (31, FreshnessState.WARN), (61, FreshnessState.FAIL)],
)
def test_user_logins_freshness_over_time(minutes_later, state):
    with dg.instance_for_test() as instance:
        assert freshness(instance) == FreshnessState.UNKNOWN
        instance.report_runless_asset_event(dg.AssetMaterialization(user_logins.key))
        with freeze_time(get_current_datetime() + timedelta(minutes=minutes_later)):
            assert freshness(instance) == state


def test_only_the_table_has_a_freshness_policy():
    policies = {spec.key.to_user_string(): spec.freshness_policy for spec in defs.resolve_all_asset_specs()}
    assert {name for name, policy in policies.items() if policy} == {"user_logins"}
