"""The masking key, from the environment only: there is no key constant anywhere in the code."""

import dagster as dg
from pydantic import Field

from logins_pipeline.core.masking import MaskingKey, parse_masking_key


class MaskingResource(dg.ConfigurableResource):  # type: ignore[type-arg]  # it provides itself
    key: str = Field(description="base64 of >= 32 random bytes (LOGINS_MASKING_KEY)")
    environment: str = Field(
        description="LOGINS_ENVIRONMENT (production, development, ...); only 'development' accepts a "
        "development key ('dev:' prefix)",
    )

    def masking_key(self) -> MaskingKey:
        return parse_masking_key(self.key, development=self.environment == "development")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.masking_key()  # refuse to start, before anything is received, with an unusable key
