-- Run by the postgres image's entrypoint, as the superuser, only when the data volume is first created.
--   logins  : the pipeline's data (public.user_logins, login_quarantine); the pipeline applies its own
--             schema migrations, so only the database is created here.
--   dagster : Dagster's instance storage (runs, event logs, schedules, sensor cursors), see docker/dagster.yaml.
-- Kept apart so that wiping or restoring one never touches the other.
CREATE DATABASE logins;
CREATE DATABASE dagster;
