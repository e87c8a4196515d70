-- user_logins by day, step 3 of 4 (see 0004): user_logins and pii_vault.login_pii become tables partitioned
-- by create_date, one partition a day, each with a DEFAULT partition, so that a login of a day that has no
-- partition yet is stored all the same (never a failed chunk). Partitions are made ahead of need by
-- public.logins_create_day (0007: yesterday to a week ahead; then the daily `retention`), which also moves
-- a day's rows out of the default partitions. Safe to run twice.

-- The range partitions of a partitioned table (not its default), with their days [first_day, end_day).
-- SECURITY DEFINER: it reads only the catalog, but naming a vault table needs USAGE on its schema.
CREATE OR REPLACE FUNCTION public.logins_day_partitions(p_parent text)
    RETURNS TABLE (partition text, first_day date, end_day date)  -- partition: schema.name
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT format('%I.%I', n.nspname, c.relname), bounds[1]::date, bounds[2]::date
    FROM pg_inherits AS i
    JOIN pg_class AS c ON c.oid = i.inhrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace,
    LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS bounds
    WHERE i.inhparent = p_parent::regclass AND bounds IS NOT NULL
    ORDER BY 2
$$;

-- Make the day's partitions of user_logins and of the vault, if it has none, and move the day's rows into
-- them from the default partitions. CREATE TABLE ... PARTITION OF would take an ACCESS EXCLUSIVE lock on the
-- parent, and wait for every chunk in flight; this takes SHARE ROW EXCLUSIVE (the vault's foreign key needs
-- it when its partition is attached) for the few milliseconds to COMMIT, and attaches a table made LIKE the
-- parent, which is as empty as the default partition's rows of that day. Returns whether it made any.
CREATE OR REPLACE FUNCTION public.logins_create_day(p_day date) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rows_table text := 'user_logins_' || to_char(p_day, 'YYYYMMDD');
    vault_table text := 'login_pii_' || to_char(p_day, 'YYYYMMDD');
    bounds text := format('FOR VALUES FROM (%L) TO (%L)', p_day, p_day + 1);
    need_rows boolean;
    need_vault boolean;
BEGIN
    -- First the lock that every step below needs, in the drain's order: no chunk can then wait on this
    -- transaction while it waits on that chunk.
    LOCK TABLE public.user_logins IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE pii_vault.login_pii IN SHARE ROW EXCLUSIVE MODE;
    need_rows := NOT EXISTS (SELECT FROM public.logins_day_partitions('public.user_logins') AS p
                             WHERE p_day >= p.first_day AND p_day < p.end_day);
    need_vault := NOT EXISTS (SELECT FROM public.logins_day_partitions('pii_vault.login_pii') AS p
                              WHERE p_day >= p.first_day AND p_day < p.end_day);
    IF need_rows AND NOT need_vault AND EXISTS (SELECT FROM pii_vault.login_pii WHERE create_date = p_day) THEN
        -- moving the rows would delete their originals (ON DELETE CASCADE): never silently
        RAISE EXCEPTION 'the vault has a partition of % but user_logins has none', p_day;
    END IF;
    IF need_vault THEN  -- the vault's rows first: they reference the logins moved next
        EXECUTE format('CREATE TABLE pii_vault.%I (LIKE pii_vault.login_pii INCLUDING DEFAULTS)', vault_table);
        EXECUTE format('WITH moved AS (DELETE FROM pii_vault.login_pii_default WHERE create_date = %L RETURNING *)'
                       ' INSERT INTO pii_vault.%I SELECT * FROM moved', p_day, vault_table);
    END IF;
    IF need_rows THEN
        EXECUTE format('CREATE TABLE public.%I (LIKE public.user_logins INCLUDING DEFAULTS)', rows_table);
        EXECUTE format('WITH moved AS (DELETE FROM public.user_logins_default WHERE create_date = %L RETURNING *)'
                       ' INSERT INTO public.%I SELECT * FROM moved', p_day, rows_table);
        EXECUTE format('ALTER TABLE public.user_logins ATTACH PARTITION public.%I %s', rows_table, bounds);
    END IF;
    IF need_vault THEN
        EXECUTE format('ALTER TABLE pii_vault.login_pii ATTACH PARTITION pii_vault.%I %s', vault_table, bounds);
    END IF;
    RETURN need_rows OR need_vault;
END $$;
REVOKE ALL ON FUNCTION public.logins_create_day(date) FROM PUBLIC;

-- user_logins: the old table becomes one partition of the days it holds.
DO $$
DECLARE
    days text[];
BEGIN
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'public.user_logins'::regclass) = 'p' THEN
        RETURN;
    END IF;
    -- From here to COMMIT: renames, empty tables and an ATTACH that trusts the validated CHECK (no scan).
    LOCK TABLE public.user_logins, pii_vault.login_pii IN ACCESS EXCLUSIVE MODE;
    ALTER TABLE public.user_logins RENAME TO user_logins_before_partitioning;
    ALTER INDEX public.user_logins_message_id_create_date_idx RENAME TO user_logins_before_partitioning_day_key;
    ALTER INDEX public.user_logins_create_date_idx RENAME TO user_logins_before_partitioning_create_date_idx;
    ALTER INDEX public.user_logins_ingested_at_brin RENAME TO user_logins_before_partitioning_ingested_at_brin;
    ALTER TABLE pii_vault.login_pii DROP CONSTRAINT IF EXISTS login_pii_message_id_fkey;

    -- The same columns and defaults as the table it replaces (a table adopted by 0001 may have more).
    CREATE TABLE public.user_logins (LIKE public.user_logins_before_partitioning INCLUDING DEFAULTS)
        PARTITION BY RANGE (create_date);
    -- A redelivered message keeps its create_date (core/origin.py): (message_id, create_date) is unique
    -- exactly when message_id is.
    CREATE UNIQUE INDEX user_logins_message_id_create_date_idx ON public.user_logins (message_id, create_date);
    CREATE INDEX user_logins_create_date_idx ON public.user_logins (create_date);
    CREATE INDEX user_logins_ingested_at_brin ON public.user_logins USING brin (ingested_at)
        WITH (autosummarize = on);
    CREATE TABLE public.user_logins_default PARTITION OF public.user_logins DEFAULT;
    CREATE OR REPLACE VIEW public.user_logins_readable AS
        SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version,
               public.app_version_text(app_version) AS app_version_text, create_date,
               message_id, sent_at, ingested_at, masking_key_id
        FROM public.user_logins;

    IF EXISTS (SELECT FROM public.user_logins_before_partitioning) THEN
        -- The old table becomes the partition of the days its CHECK (0004) names.
        days := regexp_match(pg_get_constraintdef(c.oid), '>= ''([0-9-]+)''.*< ''([0-9-]+)''')
                FROM pg_catalog.pg_constraint AS c
                WHERE c.conrelid = 'public.user_logins_before_partitioning'::regclass
                  AND c.conname = 'user_logins_days_before_partitioning';
        EXECUTE format('ALTER TABLE public.user_logins ATTACH PARTITION public.user_logins_before_partitioning'
                       ' FOR VALUES FROM (%L) TO (%L)', days[1], days[2]);
    ELSE
        DROP TABLE public.user_logins_before_partitioning;
    END IF;
    IF to_regclass('public.user_logins_undated') IS NOT NULL THEN
        INSERT INTO public.user_logins SELECT * FROM public.user_logins_undated;  -- into the default partition
        DROP TABLE public.user_logins_undated;
    END IF;
    GRANT SELECT, INSERT ON public.user_logins TO logins_writer;
    GRANT SELECT ON public.user_logins TO analyst;
END $$;

-- The vault: a new partitioned table; 0007 copies the old one's rows.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'pii_vault.login_pii'::regclass) = 'p' THEN
        RETURN;
    END IF;
    LOCK TABLE public.user_logins, pii_vault.login_pii IN ACCESS EXCLUSIVE MODE;
    ALTER TABLE pii_vault.login_pii RENAME TO login_pii_before_partitioning;
    ALTER TABLE pii_vault.login_pii_before_partitioning DROP CONSTRAINT IF EXISTS login_pii_message_id_fkey;
    CREATE TABLE pii_vault.login_pii (
        message_id           varchar(128) NOT NULL,
        create_date          date         NOT NULL,
        ip_ciphertext        bytea        NOT NULL,
        device_id_ciphertext bytea        NOT NULL,
        vault_key_id         varchar(64)  NOT NULL,
        stored_at            timestamptz  NOT NULL DEFAULT now()
    ) PARTITION BY RANGE (create_date);
    CREATE UNIQUE INDEX login_pii_message_id_create_date_idx ON pii_vault.login_pii (message_id, create_date);
    CREATE TABLE pii_vault.login_pii_default PARTITION OF pii_vault.login_pii DEFAULT;
    IF NOT EXISTS (SELECT FROM pii_vault.login_pii_before_partitioning) THEN
        DROP TABLE pii_vault.login_pii_before_partitioning;  -- otherwise 0007 copies its rows
    END IF;
    GRANT INSERT ON pii_vault.login_pii TO logins_writer;
END $$;

-- Deleting a login (or dropping its day) deletes its originals. (Added apart from the CREATE above so that it
-- holds also when user_logins was made again under a partitioned vault.)
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'pii_vault.login_pii'::regclass AND contype = 'f' AND conparentid = 0) THEN
        ALTER TABLE pii_vault.login_pii ADD CONSTRAINT login_pii_login_fkey FOREIGN KEY (message_id, create_date)
            REFERENCES public.user_logins (message_id, create_date) ON DELETE CASCADE;
    END IF;
END $$;
