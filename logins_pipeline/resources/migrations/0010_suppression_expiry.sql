-- The suppression list's rows past keep_until (migration 0009): no message of theirs can be left in the
-- queues, so the daily `retention` pass deletes them (docs/privacy.md "Erasure of one user"). Safe to run twice.

-- Delete the rows whose keep_until has passed (the drain and `redrive` already ignore them); returns how many.
CREATE OR REPLACE FUNCTION public.logins_delete_expired_suppressions() RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH expired AS (DELETE FROM public.erasure_suppression WHERE keep_until <= now() RETURNING 1)
    SELECT count(*) FROM expired
$$;

REVOKE ALL ON FUNCTION public.logins_delete_expired_suppressions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.logins_delete_expired_suppressions() TO logins_retention;
