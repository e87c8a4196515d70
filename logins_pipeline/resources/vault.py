"""The vault key, from the environment only. The vault is optional: see defs.resources.resources_from_env."""

import dagster as dg
from pydantic import Field

from logins_pipeline.core.vault import VaultKey, parse_vault_key


class VaultResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # it provides itself
    key: str | None = Field(
        default=None,
        description="LOGINS_VAULT_KEY (base64 of >= 32 random bytes); None turns the vault off",
    )
    environment: str = Field(description="LOGINS_ENVIRONMENT; only 'development' accepts a 'dev:' key")

    def vault_key(self) -> VaultKey | None:
        if self.key is None:
            return None
        return parse_vault_key(self.key, development=self.environment == "development")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.vault_key()  # refuse to start, before anything is received, with an unusable key
