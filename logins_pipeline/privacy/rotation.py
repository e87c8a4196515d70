"""Bring rows tokenised under older masking keys to the current key, from the vault.

For each row whose masking_key_id is not the current key's and whose originals are in the vault: decrypt
them, make the tokens again under the current key (the same code as ingest), update the row. In batches,
each its own transaction, so it can be interrupted and run again; it stops when no such row is left, so
rows an old-key run wrote meanwhile are caught too. Rows without a vault entry keep their old tokens.
"""

from dataclasses import dataclass

import psycopg

from logins_pipeline.core.masking import MaskingKey, pii_tokens
from logins_pipeline.core.vault import VaultEntry, VaultKey
from logins_pipeline.resources.postgres import scalar

OLD_ROWS_WITH_VAULT = """
SELECT u.message_id, v.ip_ciphertext, v.device_id_ciphertext, v.vault_key_id, u.create_date
FROM public.user_logins AS u JOIN pii_vault.login_pii AS v USING (message_id, create_date)
WHERE u.masking_key_id IS DISTINCT FROM %s
LIMIT %s
FOR UPDATE OF u
"""
UPDATE_TOKENS = """
UPDATE public.user_logins AS u
SET masked_ip = n.masked_ip, masked_device_id = n.masked_device_id, masking_key_id = %s
FROM unnest(%s::varchar[], %s::date[], %s::varchar[], %s::varchar[])
    AS n (message_id, create_date, masked_ip, masked_device_id)
WHERE u.message_id = n.message_id AND u.create_date = n.create_date  -- the day: one partition, not every day's
"""


@dataclass
class RotationSummary:
    rotated: int = 0
    without_vault: int = 0  # rows still under another key: no vault entry to make their tokens again from


def rotate_tokens(
    conn: psycopg.Connection, masking_key: MaskingKey, vault_key: VaultKey, reason: str, batch_size: int = 1_000
) -> RotationSummary:
    """`conn`: the schema owner's, in autocommit mode. Decrypting the vault in bulk is audited first."""
    conn.execute("INSERT INTO pii_vault.reveal_audit (action, reason) VALUES ('rotate', %s)", (reason,))
    summary = RotationSummary()
    while True:
        with conn.transaction():
            rows = conn.execute(OLD_ROWS_WITH_VAULT, (masking_key.key_id, batch_size)).fetchall()
            tokens = [
                (row[0], row[4], *pii_tokens(masking_key, *vault_key.open_login(VaultEntry(*row[:4])))) for row in rows
            ]
            if tokens:
                conn.execute(UPDATE_TOKENS, (masking_key.key_id, *map(list, zip(*tokens, strict=True))))
        if not rows:
            break
        summary.rotated += len(rows)
    summary.without_vault = scalar(
        conn, "SELECT count(*) FROM public.user_logins WHERE masking_key_id IS DISTINCT FROM %s", (masking_key.key_id,)
    )
    return summary
