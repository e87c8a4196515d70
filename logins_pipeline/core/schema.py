"""The one schema of a masked login row: it validates every batch and feeds the Dagster column schema.

Widths follow the exercise's table (user_id varchar(128), device_type varchar(32), masked_* varchar(256),
locale varchar(32), app_version integer, create_date date) so a row that passes always fits.
"""

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from logins_pipeline.core.app_version import INT32_MAX
from logins_pipeline.core.masking import TOKEN_PATTERN

# No control characters (C0, DEL, C1), and no lone surrogates (valid JSON escapes that cannot be encoded
# as UTF-8).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f\ud800-\udfff]*\Z"


class MaskedLogin(pa.DataFrameModel):
    message_id: Series[str] = pa.Field(unique=True, str_length={"min_value": 1, "max_value": 128},
                                       description="SQS MessageId; unique, makes redelivery a no-op")
    user_id: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 128},
                                    str_matches=NO_CONTROL_CHARACTERS, description="The app's user id")
    device_type: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 32},
                                        str_matches=NO_CONTROL_CHARACTERS,
                                        description="Device platform, lower case (android, ios, ...)")
    masked_ip: Series[str] = pa.Field(str_matches=TOKEN_PATTERN,
                                      description="HMAC-SHA-256 token of the canonical IP address")
    masked_device_id: Series[str] = pa.Field(str_matches=TOKEN_PATTERN,
                                             description="HMAC-SHA-256 token of the trimmed device_id")
    locale: Series[str] = pa.Field(nullable=True, str_length={"max_value": 32},
                                   str_matches=NO_CONTROL_CHARACTERS, description="Locale, may be null")
    app_version: Series[int] = pa.Field(ge=0, le=INT32_MAX,
                                        description="major*1e6 + minor*1e3 + patch; app_version_text() reverses it")
    create_date: Series[pd.Timestamp] = pa.Field(description="UTC date of the SQS SentTimestamp")
    sent_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ms", "tz": "UTC"},
                                                   description="SQS SentTimestamp")
    masking_key_id: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 64},
                                           description="Fingerprint of the key that made the tokens")

    class Config:
        strict = True
        coerce = True


COLUMNS = list(MaskedLogin.to_schema().columns)
