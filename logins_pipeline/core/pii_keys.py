"""The keys a login's PII is protected with, as one value: the masking key that makes its tokens and,
if the vault is on, the vault key that encrypts the originals for an authorised reveal."""

from dataclasses import dataclass

from logins_pipeline.core.masking import MaskingKey
from logins_pipeline.core.vault import VaultKey


@dataclass(frozen=True)
class PiiKeys:
    masking: MaskingKey  # its key_id is stored in each row
    vault: VaultKey | None = None  # None: the vault is off, and the originals are kept nowhere

    def __reduce__(self) -> tuple[object, tuple[bytes, bytes | None]]:
        """Pickled as the secrets alone, and made anew from them: a build worker gets the keys this way,
        through the pipe that starts it (drain/pipeline.py), and shares no object with the run."""
        return _from_secrets, (self.masking.secret, self.vault.secret if self.vault else None)


def _from_secrets(masking: bytes, vault: bytes | None) -> PiiKeys:
    return PiiKeys(MaskingKey.from_secret(masking), VaultKey.from_secret(vault) if vault is not None else None)
