"""Dagster wiring: assets, checks, sensor and job, one folder per domain."""
