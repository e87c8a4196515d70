-- Retention (README "Retention"): the role that drops days past their cutoff, what it may do (only through
-- these functions), the record of what it dropped, and `reveal` telling an expired vault day from a miss.
-- Safe to run twice.

-- logins_retention: the daily `retention` (a schedule and a command). It may make days and drop expired
-- ones through the SECURITY DEFINER functions below, and nothing else: it reads no row, and never the vault.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'logins_retention') THEN
        BEGIN
            CREATE ROLE logins_retention NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END $$;

-- One row per day (or range of days) retention removed from a table: `reveal` quotes it.
CREATE TABLE IF NOT EXISTS public.logins_retention_log (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    removed_at timestamptz NOT NULL DEFAULT now(),
    table_name text        NOT NULL,
    first_day  date        NOT NULL,
    end_day    date        NOT NULL,  -- exclusive
    rows       bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS logins_retention_log_days_idx ON public.logins_retention_log (table_name, first_day);
CREATE INDEX IF NOT EXISTS login_quarantine_quarantined_at_idx ON public.login_quarantine (quarantined_at);

-- Drop one range partition of user_logins or of the vault, with its rows; for user_logins, the vault's
-- rows of its days first (they reference it). Returns the rows dropped. Each call is one transaction of the
-- caller: a run interrupted between two calls leaves whole days, and the next run goes on.
CREATE OR REPLACE FUNCTION public.logins_drop_partition(p_partition text) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target regclass := p_partition::regclass;
    parent regclass;
    v_first date;
    v_end date;
    vault record;
    dropped bigint;
BEGIN
    SELECT i.inhparent INTO parent FROM pg_inherits AS i WHERE i.inhrelid = target;
    IF parent IS NULL OR parent NOT IN ('public.user_logins'::regclass, 'pii_vault.login_pii'::regclass) THEN
        RAISE EXCEPTION '% is not a partition of user_logins or of the vault', p_partition;
    END IF;
    SELECT p.first_day, p.end_day INTO v_first, v_end
    FROM public.logins_day_partitions(parent::text) AS p WHERE p.partition::regclass = target;
    IF v_first IS NULL THEN
        RAISE EXCEPTION '% is a default partition: retention deletes its expired rows instead', p_partition;
    END IF;
    -- The locks first, in the drain's order (no deadlock): DETACH of a login day needs ACCESS EXCLUSIVE;
    -- a vault day needs its foreign key's SHARE ROW EXCLUSIVE on user_logins (writes wait, reads do not).
    IF parent = 'public.user_logins'::regclass THEN
        LOCK TABLE public.user_logins IN ACCESS EXCLUSIVE MODE;
    ELSE
        LOCK TABLE public.user_logins IN SHARE ROW EXCLUSIVE MODE;
    END IF;
    LOCK TABLE pii_vault.login_pii IN ACCESS EXCLUSIVE MODE;
    IF parent = 'public.user_logins'::regclass THEN
        FOR vault IN SELECT * FROM public.logins_day_partitions('pii_vault.login_pii') AS p
                     WHERE p.first_day >= v_first AND p.end_day <= v_end LOOP
            PERFORM public.logins_drop_partition(vault.partition);
        END LOOP;
        PERFORM public.logins_delete_before('pii_vault.login_pii_default', v_end, v_first);
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', target) INTO dropped;
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, target);
    EXECUTE format('DROP TABLE %s', target);
    INSERT INTO public.logins_retention_log (table_name, first_day, end_day, rows)
        VALUES (parent::text, v_first, v_end, dropped);
    RETURN dropped;
END $$;

-- Delete the rows dated before p_cutoff (and from p_from on) of a table retention trims by row: the default
-- partitions (late or far days that have no partition), the row-level analytics, the quarantine.
CREATE OR REPLACE FUNCTION public.logins_delete_before(p_table text, p_cutoff date, p_from date = '-infinity')
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target regclass := p_table::regclass;
    day_column text := CASE target
        WHEN 'public.user_logins_default'::regclass THEN 'create_date'
        WHEN 'pii_vault.login_pii_default'::regclass THEN 'create_date'
        WHEN 'public.new_device_logins'::regclass THEN 'create_date'
        WHEN 'public.user_device_first_seen'::regclass THEN 'first_day'
        WHEN 'public.login_quarantine'::regclass THEN '(quarantined_at AT TIME ZONE ''UTC'')::date'
    END;
    deleted bigint;
BEGIN
    IF day_column IS NULL THEN
        RAISE EXCEPTION 'retention deletes no rows of %', target;
    END IF;
    EXECUTE format('DELETE FROM %s WHERE %s < %L AND %s >= %L', target, day_column, p_cutoff, day_column, p_from);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    IF deleted > 0 THEN
        INSERT INTO public.logins_retention_log (table_name, first_day, end_day, rows)
            VALUES (target::text, greatest(p_from, '0001-01-01'), p_cutoff, deleted);
    END IF;
    RETURN deleted;
END $$;

-- The days that have rows in the default partitions (each then gets its partition: logins_create_day).
CREATE OR REPLACE FUNCTION public.logins_default_days() RETURNS SETOF date
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT create_date FROM public.user_logins_default WHERE create_date IS NOT NULL
    UNION
    SELECT create_date FROM pii_vault.login_pii_default
$$;

REVOKE ALL ON FUNCTION public.logins_drop_partition(text), public.logins_delete_before(text, date, date),
    public.logins_default_days() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.logins_create_day(date), public.logins_drop_partition(text),
    public.logins_delete_before(text, date, date), public.logins_default_days() TO logins_retention;

-- reveal: as before, and for a login whose originals retention removed, one row without ciphertexts that
-- says when (removed_on). A message it knows nothing of still returns no row.
DROP FUNCTION IF EXISTS pii_vault.reveal(varchar, text);
CREATE FUNCTION pii_vault.reveal(p_message_id varchar, p_reason text)
    RETURNS TABLE (audit_id bigint, ip_ciphertext bytea, device_id_ciphertext bytea, vault_key_id varchar,
                   create_date date, removed_on date)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    new_audit_id bigint;
BEGIN
    INSERT INTO pii_vault.reveal_audit (action, message_id, reason)
        VALUES ('reveal', p_message_id, p_reason) RETURNING id INTO new_audit_id;
    RETURN QUERY
        SELECT new_audit_id, v.ip_ciphertext, v.device_id_ciphertext, v.vault_key_id, v.create_date, NULL::date
        FROM pii_vault.login_pii AS v WHERE v.message_id = p_message_id;
    IF NOT FOUND THEN
        RETURN QUERY
            SELECT new_audit_id, NULL::bytea, NULL::bytea, NULL::varchar, u.create_date,
                   (SELECT max(r.removed_at AT TIME ZONE 'UTC')::date FROM public.logins_retention_log AS r
                    WHERE r.table_name IN ('pii_vault.login_pii', 'pii_vault.login_pii_default')
                      AND u.create_date >= r.first_day AND u.create_date < r.end_day)
            FROM public.user_logins AS u WHERE u.message_id = p_message_id;
    END IF;
END $$;
REVOKE ALL ON FUNCTION pii_vault.reveal(varchar, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pii_vault.reveal(varchar, text) TO pii_reader;
