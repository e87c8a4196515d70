"""I/O: SQS, Postgres and the masking key, as Dagster resources usable outside Dagster too."""
