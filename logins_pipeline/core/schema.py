"""The one schema of a masked login row: it validates every batch and feeds the Dagster column schema.

Widths follow the exercise's table (user_id varchar(128), device_type varchar(32), masked_* varchar(256),
locale varchar(32), app_version integer, create_date date) so a row that passes always fits.
"""

import re

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from logins_pipeline.core.app_version import INT32_MAX
from logins_pipeline.core.masking import TOKEN_LENGTH, TOKEN_PATTERN

# Control characters (C0, DEL, C1) and lone surrogates (valid JSON escapes that cannot be encoded as UTF-8).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]"
LOWER_HEX = b"0123456789abcdef"

# The two checks below run a regex per value only when some value fails: per value, a regex costs more
# than all of pandera's other checks together, so the usual case, every value passes, is settled first
# by a few string operations over all the values joined.


def no_control_characters(series: "pd.Series[str]") -> "pd.Series[bool]":
    joined = "".join(series.dropna().tolist())
    if joined.isprintable() or re.search(CONTROL_CHARACTERS, joined) is None:  # isprintable: a fast "surely"
        return pd.Series(True, index=series.index)
    return ~series.str.contains(CONTROL_CHARACTERS, na=False)


def is_token(series: "pd.Series[str]") -> "pd.Series[bool]":
    values = series.tolist()
    joined = "".join(values)
    if joined.isascii() and not joined.encode().translate(None, LOWER_HEX) and set(map(len, values)) <= {TOKEN_LENGTH}:
        return pd.Series(True, index=series.index)
    return series.str.match(TOKEN_PATTERN, na=False)


class MaskedLogin(pa.DataFrameModel):
    message_id: Series[str] = pa.Field(
        unique=True,
        str_length={"min_value": 1, "max_value": 128},
        description="SQS MessageId; unique, makes redelivery a no-op",
    )
    user_id: Series[str] = pa.Field(str_length={"min_value": 1, "max_value": 128}, description="The app's user id")
    device_type: Series[str] = pa.Field(
        str_length={"min_value": 1, "max_value": 32}, description="Device platform, lower case (android, ios, ...)"
    )
    masked_ip: Series[str] = pa.Field(description="HMAC-SHA-256 token of the canonical IP address")
    masked_device_id: Series[str] = pa.Field(description="HMAC-SHA-256 token of the trimmed device_id")
    locale: Series[str] = pa.Field(nullable=True, str_length={"max_value": 32}, description="Locale, may be null")
    app_version: Series[int] = pa.Field(
        ge=0, le=INT32_MAX, description="major*1e6 + minor*1e3 + patch; app_version_text() reverses it"
    )
    create_date: Series[pd.Timestamp] = pa.Field(description="UTC date of the SQS SentTimestamp")
    sent_at: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs={"unit": "ms", "tz": "UTC"}, description="SQS SentTimestamp"
    )
    masking_key_id: Series[str] = pa.Field(
        str_length={"min_value": 1, "max_value": 64}, description="Fingerprint of the key that made the tokens"
    )

    @pa.check("user_id", "device_type", "locale", name="no_control_characters")
    def _no_control_characters(cls, series: "pd.Series[str]") -> "pd.Series[bool]":
        return no_control_characters(series)

    @pa.check("masked_ip", "masked_device_id", name="token_format", error=f"str_matches('{TOKEN_PATTERN}')")
    def _token_format(cls, series: "pd.Series[str]") -> "pd.Series[bool]":
        return is_token(series)

    class Config:
        strict = True
        coerce = True


COLUMNS = list(MaskedLogin.to_schema().columns)
