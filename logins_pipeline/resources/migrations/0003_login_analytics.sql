-- Daily login analytics downstream of user_logins (README "Analytics"): one table per asset, each
-- rewritten one day (create_date) at a time by logins_pipeline/analytics.py. Safe to run twice.

-- Two indexes on user_logins, both cheap to keep up as a drain appends (docs/benchmarks.md has the cost):
-- one day's partition reads its rows by create_date (a date repeats a million times a day: the btree's
-- deduplication keeps this index small) ...
CREATE INDEX IF NOT EXISTS user_logins_create_date_idx ON public.user_logins (create_date);
-- ... and the days a drain wrote to are those of the rows it inserted, found by ingested_at (the time of their
-- transaction). BRIN: a few pages, almost free to keep up on an append-only time column.
CREATE INDEX IF NOT EXISTS user_logins_ingested_at_brin ON public.user_logins USING brin (ingested_at)
    WITH (autosummarize = on);

-- Per day: logins, distinct users/devices/addresses, and counts by device_type, locale (null as "(none)")
-- and app version (as text).
CREATE TABLE IF NOT EXISTS public.daily_login_stats (
    create_date    date        PRIMARY KEY,
    logins         bigint      NOT NULL,
    users          bigint      NOT NULL,
    devices        bigint      NOT NULL,
    addresses      bigint      NOT NULL,
    by_device_type jsonb       NOT NULL,
    by_locale      jsonb       NOT NULL,
    by_app_version jsonb       NOT NULL,
    computed_at    timestamptz NOT NULL DEFAULT now()
);

-- Per day: each masked device id / masked address used by at least min_users distinct users that day.
CREATE TABLE IF NOT EXISTS public.shared_devices (
    create_date      date         NOT NULL,
    masked_device_id varchar(256) NOT NULL,
    users            integer      NOT NULL,
    logins           integer      NOT NULL,
    min_users        integer      NOT NULL,
    PRIMARY KEY (create_date, masked_device_id)
);
CREATE TABLE IF NOT EXISTS public.shared_addresses (
    create_date date         NOT NULL,
    masked_ip   varchar(256) NOT NULL,
    users       integer      NOT NULL,
    logins      integer      NOT NULL,
    min_users   integer      NOT NULL,
    PRIMARY KEY (create_date, masked_ip)
);

-- The first day each (user_id, masked_device_id) pair logged in, as far as the days refreshed so far show:
-- new_device_logins keeps it, so that asking "seen before?" costs one probe of this small table per pair
-- instead of an index over user_logins that every drain would pay for. pair = md5(user_id || '/' ||
-- masked_device_id): 16 bytes, a hash of values that are already tokens. Internal: no analyst grant.
CREATE TABLE IF NOT EXISTS public.user_device_first_seen (
    pair      uuid PRIMARY KEY,
    first_day date NOT NULL
);
CREATE INDEX IF NOT EXISTS user_device_first_seen_first_day_idx ON public.user_device_first_seen (first_day);

-- Per day: the logins whose (user_id, masked_device_id) pair appears on no earlier day.
CREATE TABLE IF NOT EXISTS public.new_device_logins (
    create_date      date         NOT NULL,
    message_id       varchar(128),
    user_id          varchar(128) NOT NULL,
    masked_device_id varchar(256) NOT NULL,
    device_type      varchar(32),
    sent_at          timestamptz
);
CREATE INDEX IF NOT EXISTS new_device_logins_create_date_idx ON public.new_device_logins (create_date);

-- Per day: the share of that day's distinct users who logged in with each app version.
CREATE TABLE IF NOT EXISTS public.app_version_adoption (
    create_date      date          NOT NULL,
    app_version      integer       NOT NULL,
    app_version_text text          NOT NULL,
    users            integer       NOT NULL,
    share            numeric(7, 6) NOT NULL CHECK (share > 0 AND share <= 1),
    PRIMARY KEY (create_date, app_version)
);

-- The pipeline (logins_writer) rewrites a day of each table; the analyst reads them. Neither gets anything
-- on pii_vault from here: these tables hold tokens and counts only.
GRANT SELECT, INSERT, UPDATE ON public.user_device_first_seen TO logins_writer;
GRANT SELECT, INSERT, DELETE
    ON public.daily_login_stats, public.shared_devices, public.shared_addresses, public.new_device_logins,
       public.app_version_adoption
    TO logins_writer;
GRANT SELECT
    ON public.daily_login_stats, public.shared_devices, public.shared_addresses, public.new_device_logins,
       public.app_version_adoption
    TO analyst;
