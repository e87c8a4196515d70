"""logins_pipeline: SQS login events -> masked, validated rows in Postgres, orchestrated by Dagster."""
