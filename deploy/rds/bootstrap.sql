-- Once per RDS instance (deploy/cloudformation/database.yaml), as its master user - not a superuser on RDS:
-- NOSUPERUSER CREATEDB CREATEROLE. docs/deploy.md runs it with psql:
--   psql "<master DSN>" -v ON_ERROR_STOP=1 -v owner_password=... -v dagster_password=... -f deploy/rds/bootstrap.sql
-- logins_pipeline_tests/integration/test_rds_bootstrap.py runs it as a master built the same way.

-- The owner of the logins schema: applies the migrations (`logins-pipeline migrate`, the migrate task), and
-- migration 0002 creates the group roles logins_writer, analyst and pii_reader, hence CREATEROLE.
CREATE ROLE logins_owner LOGIN CREATEROLE PASSWORD :'owner_password';
-- The owner of Dagster's storage: the webserver, daemon, code server and runs create and use its tables.
CREATE ROLE dagster LOGIN PASSWORD :'dagster_password';

-- PostgreSQL 16: CREATE DATABASE ... OWNER x needs the right to SET ROLE x, and creating a role gives its
-- creator only ADMIN OPTION on it (createrole_self_grant is empty by default). So the master joins both first.
GRANT logins_owner TO CURRENT_USER;
GRANT dagster TO CURRENT_USER;

CREATE DATABASE logins OWNER logins_owner;
CREATE DATABASE dagster OWNER dagster;

-- Only the roles granted CONNECT below and in deploy/rds/logins.sql reach a database (PUBLIC has it by default).
REVOKE ALL ON DATABASE logins FROM PUBLIC;
REVOKE ALL ON DATABASE dagster FROM PUBLIC;
