"""Freshness of user_logins, as a Dagster 1.13 FreshnessPolicy: the daemon (FreshnessDaemon, part of
`dagster-daemon run` and `dg dev`) marks the table WARN after 30 minutes and FAIL after an hour
without a materialization, and the UI shows that state on the asset. No sensor and no extra runs: the
superseded freshness-check factories launch a run per evaluation (a Fargate task each on ECS)."""

from datetime import timedelta

import dagster as dg

# Logins arrive all day and the sensor drains any backlog within a minute, so an hour without a
# materialization means the pipeline, or the apps' publishing, has stopped.
USER_LOGINS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=1), warn_window=timedelta(minutes=30)
)
