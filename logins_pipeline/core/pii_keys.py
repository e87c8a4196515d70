"""The keys a login's PII is protected with, as one value: the masking key that makes its tokens and,
if the vault is on, the vault key that encrypts the originals for an authorised reveal."""

from dataclasses import dataclass

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.vault import VaultKey


@dataclass(frozen=True)
class PiiKeys:
    masking: MaskingKey  # its key_id is stored in each row
    vault: VaultKey | None = None  # None: the vault is off, and the originals are kept nowhere

    def rebuilt(self) -> "PiiKeys":
        """The same keys as new objects that share no state with these: a forked build worker uses them, so
        that a hash object's lock another thread held at the fork cannot block it (drain/pipeline.py)."""
        return PiiKeys(
            MaskingKey.from_secret(self.masking.secret),
            VaultKey.from_secret(self.vault.secret) if self.vault else None,
        )
