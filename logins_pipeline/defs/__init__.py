"""Dagster wiring, one folder per domain, autoloaded as dg does (logins_pipeline/definitions.py).

Every module here is loaded, and every asset, spec, check, job, sensor and schedule bound at its top level is
a definition, so a new one needs no registration: write it in a module of its own. Two rules keep each
definition found once (test_definitions checks both):
- Import other modules, not their definitions (`from logins_pipeline.defs.logins import assets`, then
  `assets.user_logins`): a name bound at the top level of a second module is found there too.
- A module whose specs also make up a multi-asset (logins/assets.py) declares what it defines with
  `@dg.definitions`; the specs alone would be a duplicate asset key.
Resources and the runs' console logger are in resources.py.
"""
