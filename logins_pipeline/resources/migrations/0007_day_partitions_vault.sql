-- migration: no transaction
-- user_logins by day, step 4 of 4 (see 0004): the vault's rows of before 0006 move into its day partitions
-- with their login's create_date. A copy (the old vault had no create_date), run beside the drain: the day
-- partitions are made in one short transaction, then the rows are copied holding no lock that stops a
-- drain. Until it ends, `reveal` of a login stored before 0006 finds nothing. Safe to run again.

-- The days from yesterday to a week ahead (then the daily `retention` keeps a week ahead).
SELECT public.logins_create_day(day::date)
FROM generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day') AS day;
DO $$
BEGIN
    IF to_regclass('pii_vault.login_pii_before_partitioning') IS NOT NULL THEN
        PERFORM public.logins_create_day(day)
        FROM (SELECT DISTINCT coalesce(v.create_date, u.create_date)
              FROM pii_vault.login_pii_before_partitioning AS v
              JOIN public.user_logins_before_partitioning AS u USING (message_id)) AS days (day);
    END IF;
END $$;
DO $$
BEGIN
    IF to_regclass('pii_vault.login_pii_before_partitioning') IS NOT NULL THEN
        INSERT INTO pii_vault.login_pii (message_id, create_date, ip_ciphertext, device_id_ciphertext, vault_key_id, stored_at)
        SELECT v.message_id, coalesce(v.create_date, u.create_date), v.ip_ciphertext, v.device_id_ciphertext,
               v.vault_key_id, v.stored_at
        FROM pii_vault.login_pii_before_partitioning AS v
        JOIN public.user_logins_before_partitioning AS u USING (message_id)
        ON CONFLICT DO NOTHING;
        DROP TABLE pii_vault.login_pii_before_partitioning;
    END IF;
END $$;
