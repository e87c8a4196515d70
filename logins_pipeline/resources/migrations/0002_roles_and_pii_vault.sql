-- Roles, the PII vault and its audit log (docs/privacy.md). Safe to run twice.

-- Group roles (NOLOGIN): people and services get LOGIN roles that are members of one of them.
--   logins_writer  the pipeline: appends rows, cannot read the vault
--   analyst        reads user_logins (tokens), never the vault
--   pii_reader     reads originals only through pii_vault.reveal(), which writes an audit row first
-- Roles are cluster-wide and several databases of one cluster may run this at the same moment: create a
-- role only if it is missing, and take a concurrent creator's "already exists" as success.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['logins_writer', 'analyst', 'pii_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END $$;

-- The original ip and device_id of a row, as AES-SIV ciphertexts made by the pipeline: the vault key
-- never reaches the database. Deleting a login deletes its originals.
CREATE SCHEMA IF NOT EXISTS pii_vault;
REVOKE ALL ON SCHEMA pii_vault FROM PUBLIC;

CREATE TABLE IF NOT EXISTS pii_vault.login_pii (
    message_id           varchar(128) PRIMARY KEY REFERENCES public.user_logins (message_id) ON DELETE CASCADE,
    ip_ciphertext        bytea        NOT NULL,
    device_id_ciphertext bytea        NOT NULL,
    vault_key_id         varchar(64)  NOT NULL,
    stored_at            timestamptz  NOT NULL DEFAULT now()
);

-- Who decrypted what, when and why: one row per reveal (even of a message the vault does not hold) and
-- one per token rotation (which decrypts many rows). Append-only, for its owner too.
CREATE TABLE IF NOT EXISTS pii_vault.reveal_audit (
    id          bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz  NOT NULL DEFAULT now(),
    who         text         NOT NULL DEFAULT session_user,  -- the login, also inside SECURITY DEFINER
    client_addr inet         DEFAULT inet_client_addr(),
    action      varchar(16)  NOT NULL CHECK (action IN ('reveal', 'rotate')),
    message_id  varchar(128),  -- NULL for a rotation
    reason      text         NOT NULL CHECK (btrim(reason) <> '')
);

CREATE OR REPLACE FUNCTION pii_vault.refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'pii_vault.reveal_audit is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER reveal_audit_append_only BEFORE UPDATE OR DELETE ON pii_vault.reveal_audit
    FOR EACH ROW EXECUTE FUNCTION pii_vault.refuse_change();
CREATE OR REPLACE TRIGGER reveal_audit_no_truncate BEFORE TRUNCATE ON pii_vault.reveal_audit
    FOR EACH STATEMENT EXECUTE FUNCTION pii_vault.refuse_change();

-- The only way into the vault for pii_reader: it appends the audit row, then returns the ciphertexts
-- (decrypted by `logins-pipeline reveal` with LOGINS_VAULT_KEY). It runs as its owner, so the reader
-- needs no privilege on either table; search_path is pinned so nothing the caller creates is resolved.
DROP FUNCTION IF EXISTS pii_vault.reveal(varchar, text);  -- 0008 changed what it returns: run again, 0002 made it anew
CREATE FUNCTION pii_vault.reveal(p_message_id varchar, p_reason text)
    RETURNS TABLE (audit_id bigint, ip_ciphertext bytea, device_id_ciphertext bytea, vault_key_id varchar)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_audit_id bigint;
BEGIN
    INSERT INTO pii_vault.reveal_audit (action, message_id, reason)
        VALUES ('reveal', p_message_id, p_reason) RETURNING id INTO new_audit_id;
    RETURN QUERY
        SELECT new_audit_id, v.ip_ciphertext, v.device_id_ciphertext, v.vault_key_id
        FROM pii_vault.login_pii AS v WHERE v.message_id = p_message_id;
END $$;

REVOKE ALL ON FUNCTION pii_vault.reveal(varchar, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pii_vault.refuse_change() FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pii_vault FROM PUBLIC;

GRANT SELECT, INSERT ON public.user_logins, public.login_quarantine TO logins_writer;
GRANT SELECT ON public.logins_schema_migrations TO logins_writer;
GRANT USAGE ON SCHEMA pii_vault TO logins_writer, pii_reader;
GRANT INSERT ON pii_vault.login_pii TO logins_writer;
GRANT SELECT ON public.user_logins, public.user_logins_readable, public.login_quarantine TO analyst;
GRANT EXECUTE ON FUNCTION pii_vault.reveal(varchar, text) TO pii_reader;
