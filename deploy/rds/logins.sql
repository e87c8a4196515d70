-- After the first `logins-pipeline migrate` (which creates the group roles), as logins_owner on the database
-- logins. docs/deploy.md runs it with psql:
--   psql "<admin DSN>" -v ON_ERROR_STOP=1 -v writer_password=... -v retention_password=... -v erasure_password=...
--     -f deploy/rds/logins.sql
-- People get their own logins with deploy/rds/person.sql.

-- The group roles may connect; what each may read or write is in the migrations (docs/privacy.md).
GRANT CONNECT ON DATABASE logins TO logins_writer, analyst, pii_reader;
-- The writer's temporary tables: the staging table of a chunk that holds a redelivered message, and the daily
-- analytics' refresh (PUBLIC's TEMPORARY went with bootstrap.sql's REVOKE).
GRANT TEMPORARY ON DATABASE logins TO logins_writer;
-- logins_retention (migration 0008) may only call the day-partition functions: make days, drop expired ones.
GRANT CONNECT ON DATABASE logins TO logins_retention;
-- logins_erasure (migration 0009) may only erase one user at a time: delete their rows, recompute their days
-- (the analytics' refresh, in temporary tables: PUBLIC's TEMPORARY went with bootstrap.sql's REVOKE).
GRANT CONNECT, TEMPORARY ON DATABASE logins TO logins_erasure;

-- The pipeline's login (the DSN of the secret logins/postgres-dsn): code server and runs.
CREATE ROLE logins_writer_app LOGIN PASSWORD :'writer_password' IN ROLE logins_writer;
-- The daily `retention` schedule's login (the DSN of the secret logins/retention-dsn): code server and runs.
CREATE ROLE logins_retention_app LOGIN PASSWORD :'retention_password' IN ROLE logins_retention;
-- The `erase_user_job`'s login (the DSN of the secret logins/erasure-dsn): code server and runs.
CREATE ROLE logins_erasure_app LOGIN PASSWORD :'erasure_password' IN ROLE logins_erasure;
