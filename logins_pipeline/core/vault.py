"""The PII vault's encryption: AES-SIV (deterministic authenticated encryption) of a login's original
`ip` and `device_id`, so an authorised person can recover them (`logins-pipeline reveal`) and tokens can be
remade under a new masking key (`logins-pipeline rotate-tokens`).

Deterministic: the same (row, field, value) always gives the same ciphertext, so a redelivered message
writes the same vault row and there is no nonce to store or get wrong. The field name and the message id
are authenticated as associated data: a ciphertext moved to another row or field no longer decrypts.
The database only ever sees ciphertexts; LOGINS_VAULT_KEY stays with the pipeline and the CLI.
"""

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from logins_pipeline import settings
from logins_pipeline.core.keys import fingerprint, parse_secret


class VaultError(Exception):
    """A vault entry cannot be opened with this key (another key, or altered in the database)."""


@dataclass(frozen=True)
class VaultEntry:
    """The ciphertexts of one login's original ip and device_id, as received."""

    message_id: str
    ip: bytes = field(repr=False)
    device_id: bytes = field(repr=False)
    key_id: str


@dataclass(frozen=True)
class VaultKey:
    secret: bytes = field(repr=False)
    key_id: str
    _siv: AESSIV = field(repr=False, compare=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> "VaultKey":
        # AES-256-SIV takes 64 bytes; HKDF stretches any key of >= 32 random bytes to that, so both keys
        # of the platform have one format.
        derived = HKDF(hashes.SHA256(), length=64, salt=None, info=b"logins_pipeline vault AES-SIV").derive(secret)
        return cls(secret=secret, key_id=fingerprint(secret, b"logins_pipeline vault key id"), _siv=AESSIV(derived))

    def seal(self, name: str, message_id: str, value: str) -> bytes:
        data = value.encode("utf-8", "surrogatepass")
        return self._siv.encrypt(data, [name.encode(), message_id.encode("utf-8", "surrogatepass")])

    def open(self, name: str, message_id: str, ciphertext: bytes) -> str:
        try:
            data = self._siv.decrypt(ciphertext, [name.encode(), message_id.encode("utf-8", "surrogatepass")])
        except InvalidTag:
            raise VaultError(
                f"the vault's {name} of message {message_id} does not open with LOGINS_VAULT_KEY (key id {self.key_id})"
            ) from None
        return data.decode("utf-8", "surrogatepass")

    def seal_login(self, message_id: str, ip: str, device_id: str) -> VaultEntry:
        return VaultEntry(
            message_id, self.seal("ip", message_id, ip), self.seal("device_id", message_id, device_id), self.key_id
        )

    def open_login(self, entry: VaultEntry) -> tuple[str, str]:
        """(ip, device_id) as originally received."""
        if entry.key_id != self.key_id:
            raise VaultError(
                f"message {entry.message_id} was vaulted under key id {entry.key_id}; "
                f"LOGINS_VAULT_KEY is key id {self.key_id}"
            )
        return self.open("ip", entry.message_id, entry.ip), self.open("device_id", entry.message_id, entry.device_id)


def parse_vault_key(text: str | None, *, development: bool) -> VaultKey:
    """Decode LOGINS_VAULT_KEY: the same format as the masking key (see core.keys)."""
    return VaultKey.from_secret(parse_secret(text, settings.VAULT_KEY, development=development))
