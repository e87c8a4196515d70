-- user_logins by day, step 1 of 4 (README "One partition a day"): prepare the existing table to become the
-- partition of the days it holds, without a scan under a lock that stops the drain. Safe to run twice, and a
-- no-op once user_logins is partitioned.
--   0004 (this)  rows without a date aside; a CHECK of the table's dates added NOT VALID (a brief lock, no scan)
--   0005         the unique key (message_id, create_date) built CONCURRENTLY; the CHECK validated (writes go on)
--   0006         the swap: the table becomes one partition of a new partitioned user_logins, whose ATTACH
--                trusts the validated CHECK and skips its scan; the vault gets its create_date and days
--   0007         the vault's rows of before the swap copied into its day partitions
DO $$
DECLARE
    first_day date;
    end_day date;
BEGIN
    IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = 'public.user_logins'::regclass) <> 'r' THEN
        RETURN;
    END IF;
    -- Rows without a date (a table adopted from before 0001) belong to no day: 0006 puts them in the default
    -- partition. Found through the create_date index (0003).
    CREATE TABLE IF NOT EXISTS public.user_logins_undated (LIKE public.user_logins);
    WITH moved AS (DELETE FROM public.user_logins WHERE create_date IS NULL RETURNING *)
    INSERT INTO public.user_logins_undated SELECT * FROM moved;
    -- The days the table will be the partition of: from its first day to the day after tomorrow (UTC), so that
    -- the rows a drain writes until the swap fit. min and max come from the create_date index, not a scan.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint
                   WHERE conrelid = 'public.user_logins'::regclass AND conname = 'user_logins_days_before_partitioning') THEN
        first_day := coalesce((SELECT min(create_date) FROM public.user_logins), (now() AT TIME ZONE 'UTC')::date);
        end_day := greatest((SELECT max(create_date) FROM public.user_logins) + 1, (now() AT TIME ZONE 'UTC')::date + 2);
        EXECUTE format(
            'ALTER TABLE public.user_logins ADD CONSTRAINT user_logins_days_before_partitioning'
            ' CHECK (create_date IS NOT NULL AND create_date >= %L AND create_date < %L) NOT VALID',
            first_day, end_day);
    END IF;
END $$;

-- The vault's rows get their login's create_date (the drain writes it from now on; 0007 fills older rows).
ALTER TABLE pii_vault.login_pii ADD COLUMN IF NOT EXISTS create_date date;
