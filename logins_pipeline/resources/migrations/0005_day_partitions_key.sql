-- migration: no transaction
-- user_logins by day, step 2 of 4 (see 0004): outside a transaction, so that neither statement stops the
-- drain. Both are no-ops on a partitioned user_logins and safe to run again (an index a failed CONCURRENTLY
-- build left invalid is dropped first).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_index
               WHERE indexrelid = to_regclass('public.user_logins_message_id_create_date_idx') AND NOT indisvalid) THEN
        DROP INDEX public.user_logins_message_id_create_date_idx;
    END IF;
END $$;
-- The unique key of the partitioned table, built beside the drain's writes. (On a partitioned user_logins
-- the partitioned index of that name exists, made by 0006, and IF NOT EXISTS makes this a no-op.)
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS user_logins_message_id_create_date_idx
ON public.user_logins (message_id, create_date);
-- The days CHECK of 0004: a scan that holds only a SHARE UPDATE EXCLUSIVE lock (writes go on).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_constraint
               WHERE conrelid = 'public.user_logins'::regclass AND conname = 'user_logins_days_before_partitioning'
                 AND NOT convalidated) THEN
        ALTER TABLE public.user_logins VALIDATE CONSTRAINT user_logins_days_before_partitioning;
    END IF;
END $$;
