-- The exercise's seven columns, kept with their names and types so analyst queries keep working.
-- IF NOT EXISTS everywhere: safe to run twice and on a table that already exists with those columns.
CREATE TABLE IF NOT EXISTS public.user_logins (
    user_id          varchar(128),
    device_type      varchar(32),
    masked_ip        varchar(256),
    masked_device_id varchar(256),
    locale           varchar(32),
    app_version      integer,
    create_date      date
);

-- Our own columns. Rows written before this migration keep NULL message ids (NULLs never conflict).
ALTER TABLE public.user_logins
    ADD COLUMN IF NOT EXISTS message_id     varchar(128),
    ADD COLUMN IF NOT EXISTS sent_at        timestamptz,
    ADD COLUMN IF NOT EXISTS ingested_at    timestamptz DEFAULT now(),
    ADD COLUMN IF NOT EXISTS masking_key_id varchar(64);

-- The SQS message id makes a redelivered message a no-op (INSERT ... ON CONFLICT DO NOTHING).
CREATE UNIQUE INDEX IF NOT EXISTS user_logins_message_id_key ON public.user_logins (message_id);

-- Messages that could not become a row, with the reason. Never plaintext PII: masked_body is the parsed
-- JSON object with ip/device_id replaced by tokens; a body that is not a JSON object is kept only as its
-- size and a keyed hash.
CREATE TABLE IF NOT EXISTS public.login_quarantine (
    message_id     varchar(128) PRIMARY KEY,
    reason         varchar(64)  NOT NULL,
    detail         text         NOT NULL,
    masked_body    text,
    body_bytes     integer      NOT NULL,
    body_hmac      varchar(64)  NOT NULL,
    sent_at        timestamptz  NOT NULL,
    receive_count  integer      NOT NULL,
    masking_key_id varchar(64)  NOT NULL,
    quarantined_at timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS login_quarantine_reason_idx ON public.login_quarantine (reason);

-- app_version is stored as major*1000000 + minor*1000 + patch; this gives the text back.
CREATE OR REPLACE FUNCTION public.app_version_text(encoded integer) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (encoded / 1000000)::text || '.' || (encoded / 1000 % 1000)::text || '.' || (encoded % 1000)::text $$;

CREATE OR REPLACE VIEW public.user_logins_readable AS
    SELECT user_id, device_type, masked_ip, masked_device_id, locale, app_version,
           public.app_version_text(app_version) AS app_version_text, create_date,
           message_id, sent_at, ingested_at, masking_key_id
    FROM public.user_logins;
