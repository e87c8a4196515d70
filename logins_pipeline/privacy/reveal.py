"""Recover one login's original ip and device_id for an authorised person, with an audit row.

pii_vault.reveal() (SECURITY DEFINER, executable by pii_reader only) appends the audit row, then returns
the ciphertexts; they are decrypted here, with the vault key the database never sees.
"""

from dataclasses import dataclass, field

import psycopg

from logins_pipeline.core.vault import VaultEntry, VaultKey


class NotInVault(LookupError):
    """The vault holds no entry for this message (the attempt is audited all the same)."""


class RemovedByRetention(NotInVault):
    """The vault held this login's originals, and retention removed its day (LOGINS_VAULT_RETENTION_DAYS)."""


@dataclass(frozen=True)
class Revealed:
    audit_id: int
    ip: str = field(repr=False)  # as received
    device_id: str = field(repr=False)


def reveal(conn: psycopg.Connection, vault_key: VaultKey, message_id: str, reason: str) -> Revealed:
    """`conn` must be in autocommit mode, so the audit row is committed even when nothing is found."""
    row = conn.execute(
        "SELECT audit_id, ip_ciphertext, device_id_ciphertext, vault_key_id, create_date, removed_on"
        " FROM pii_vault.reveal(%s, %s)",
        (message_id, reason),
    ).fetchone()
    if row is not None and row[5] is not None:
        raise RemovedByRetention(
            f"the originals of message {message_id} (a login of {row[4]}) were removed by retention on {row[5]}"
            " (the attempt is audited)"
        )
    if row is None or row[1] is None:
        raise NotInVault(f"the vault holds no entry for message {message_id} (the attempt is audited)")
    audit_id, ip, device_id, key_id, _, _ = row
    ip, device_id = vault_key.open_login(VaultEntry(message_id, ip, device_id, key_id))
    return Revealed(audit_id, ip, device_id)
