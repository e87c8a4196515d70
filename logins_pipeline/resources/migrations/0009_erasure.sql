-- Erasure of one user (docs/privacy.md "Erasure"): the role that erases, what it may do, the audit of each
-- erasure, the suppression list the drain and `redrive` consult, and the rewrite of the affected files.
-- Safe to run twice.

-- logins_erasure: `logins-pipeline erase` and the erase_user job. It deletes one user's rows, recomputes
-- the days they counted in, and records the erasure; it reads the vault never (its rows go through
-- logins_erase_vault), and rewrites files only through logins_rewrite.
DO $$
BEGIN
    CREATE ROLE logins_erasure NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- made by an earlier run, or for another database of the cluster
END $$;

-- One row per erasure: a keyed hash of the user id (never the id), who asked, why, when, rows per table.
CREATE TABLE IF NOT EXISTS public.erasure_audit (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_hash      text        NOT NULL,
    masking_key_id text        NOT NULL,
    requested_by   text        NOT NULL,
    erased_by      text        NOT NULL DEFAULT session_user,
    reason         text        NOT NULL,
    erased_at      timestamptz NOT NULL DEFAULT now(),
    rows_removed   jsonb       NOT NULL,
    relations      text[]      NOT NULL,  -- the tables and partitions it deleted from: to be rewritten
    rewritten_at   timestamptz            -- when they were (logins_rewrite), or NULL until then
);
CREATE INDEX IF NOT EXISTS erasure_audit_user_hash_idx ON public.erasure_audit (user_hash);

-- The erased users whose messages may still be in the queues: the drain and `redrive` delete them unread.
-- keep_until: the erasure, plus the longest a message can live in the queues (retention + visibility).
CREATE TABLE IF NOT EXISTS public.erasure_suppression (
    user_hash      text        PRIMARY KEY,
    masking_key_id text        NOT NULL,
    erased_at      timestamptz NOT NULL DEFAULT now(),
    keep_until     timestamptz NOT NULL
);

-- The vault's rows of one user's logins (what the cascade would remove), counted for the audit.
CREATE OR REPLACE FUNCTION public.logins_erase_vault(p_user_id text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    deleted bigint;
BEGIN
    DELETE FROM pii_vault.login_pii AS v USING public.user_logins AS u
    WHERE u.user_id = p_user_id AND v.message_id = u.message_id AND v.create_date = u.create_date;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END $$;

-- Rewrite one relation's files (and its indexes' and TOAST's) so that no deleted tuple's bytes stay in
-- them: CLUSTER on its first index (VACUUM FULL cannot run in a function; the result is the same), then
-- ANALYZE it, so that its statistics are made again from the rows left. Only the tables an erasure
-- touches, their partitions, and pg_statistic (whose dead rows keep old statistics' values; that one needs
-- the function's owner to be a superuser: otherwise it says so and skips it).
CREATE OR REPLACE FUNCTION public.logins_rewrite(p_table text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target regclass := p_table::regclass;
    root regclass := coalesce(
        (SELECT a.relid FROM pg_partition_ancestors(target) AS a ORDER BY a.relid = target LIMIT 1), target);
    index_name regclass;
BEGIN
    IF root NOT IN ('public.user_logins'::regclass, 'pii_vault.login_pii'::regclass,
                    'public.login_quarantine'::regclass, 'public.new_device_logins'::regclass,
                    'public.user_device_first_seen'::regclass, 'public.daily_login_stats'::regclass,
                    'public.shared_devices'::regclass, 'public.shared_addresses'::regclass,
                    'public.app_version_adoption'::regclass, 'pg_catalog.pg_statistic'::regclass) THEN
        RAISE EXCEPTION 'an erasure rewrites no %', target;
    END IF;
    IF target = 'pg_catalog.pg_statistic'::regclass
       AND NOT (SELECT r.rolsuper FROM pg_roles AS r WHERE r.rolname = current_user) THEN
        RAISE NOTICE 'pg_statistic is rewritten only by a superuser';
        RETURN false;
    END IF;
    SELECT i.indexrelid INTO index_name FROM pg_index AS i WHERE i.indrelid = target ORDER BY i.indexrelid LIMIT 1;
    EXECUTE format('CLUSTER %s USING %I', target, (SELECT c.relname FROM pg_class AS c WHERE c.oid = index_name));
    IF target <> 'pg_catalog.pg_statistic'::regclass THEN
        EXECUTE format('ANALYZE %s', target);
    END IF;
    RETURN true;
END $$;

-- The erasures not rewritten yet, with the relations they deleted from (that still exist), and marking
-- erasures rewritten: `erase --rewrite` and the daily `retention` pass use both.
CREATE OR REPLACE FUNCTION public.logins_pending_rewrites() RETURNS TABLE (audit_id bigint, relation text)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT a.id, r.relation FROM public.erasure_audit AS a, unnest(a.relations) AS r(relation)
    WHERE a.rewritten_at IS NULL AND to_regclass(r.relation) IS NOT NULL
    UNION ALL SELECT a.id, NULL FROM public.erasure_audit AS a WHERE a.rewritten_at IS NULL
$$;
CREATE OR REPLACE FUNCTION public.logins_rewrites_done(p_audit_ids bigint[]) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    UPDATE public.erasure_audit SET rewritten_at = now() WHERE id = ANY (p_audit_ids) AND rewritten_at IS NULL
$$;

REVOKE ALL ON FUNCTION public.logins_erase_vault(text), public.logins_rewrite(text),
    public.logins_pending_rewrites(), public.logins_rewrites_done(bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.logins_erase_vault(text), public.logins_rewrite(text),
    public.logins_pending_rewrites(), public.logins_rewrites_done(bigint[]) TO logins_erasure;
GRANT EXECUTE ON FUNCTION public.logins_rewrite(text), public.logins_pending_rewrites(),
    public.logins_rewrites_done(bigint[]) TO logins_retention;
GRANT SELECT, DELETE ON public.user_logins, public.login_quarantine TO logins_erasure;
GRANT USAGE ON SCHEMA pii_vault TO logins_erasure;  -- to name the vault's partitions to rewrite; no table grant
-- the recomputation of a day (logins_pipeline/analytics.py), as the pipeline does it
GRANT SELECT, INSERT, UPDATE, DELETE ON public.user_device_first_seen TO logins_erasure;
GRANT SELECT, INSERT, DELETE
    ON public.daily_login_stats, public.shared_devices, public.shared_addresses, public.new_device_logins,
       public.app_version_adoption
    TO logins_erasure;
GRANT SELECT, INSERT ON public.erasure_audit TO logins_erasure;
GRANT SELECT, INSERT, UPDATE ON public.erasure_suppression TO logins_erasure;
-- the drain and `redrive` read the list
GRANT SELECT ON public.erasure_suppression TO logins_writer;
