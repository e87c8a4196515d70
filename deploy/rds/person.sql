-- A person's login in one group role (analyst or pii_reader), as logins_owner. One login per person: the
-- vault's audit log names who revealed what.
--   psql "<admin DSN>" -v ON_ERROR_STOP=1 -v login=alice -v password=... -v group_role=pii_reader -f deploy/rds/person.sql
CREATE ROLE :"login" LOGIN PASSWORD :'password' IN ROLE :"group_role";
