"""`logins-pipeline`, the command line (main.py): local services, seeding, runs in this process recorded in
the Dagster instance (run.py), status, reveal, rotation and redrive."""
